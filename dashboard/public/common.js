// Shared by every page: the header, the session (read-only, signed out, signed in), JSON calls
// (POSTs carry the session's CSRF token), a confirmation dialog and small formatters.

/** Element builder: h('td', { class: 'x' }, 'text', child). Text is always text, never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(body.error ?? `${res.status}`);
  return body;
}

let session = { readOnly: true, signedIn: false, csrf: null };

export async function loadSession() {
  session = await getJSON('/api/session');
  return session;
}

export const canAct = () => session.signedIn && !session.readOnly;

export async function postJSON(path, body = {}) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf ?? '' },
    body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(out.error ?? `${res.status}`);
  return out;
}

/** The header: navigation, and what the operator may do. */
export async function header(active) {
  await loadSession().catch(() => {});
  const links = [
    ['/', 'Runs', 'runs'],
    ['/hosts', 'Hosts', 'hosts'],
    ['/submissions', 'Submissions', 'submissions'],
  ];
  const status = session.readOnly
    ? h('span', { class: 'badge muted', title: 'set SWITCHYARD_DASHBOARD_TOKEN in .env to act' }, 'read-only')
    : session.signedIn
      ? h('button', { class: 'link', onclick: async () => (await postJSON('/api/logout'), location.reload()) }, 'sign out')
      : h('a', { href: `/login?next=${encodeURIComponent(location.pathname)}` }, 'sign in to act');
  const nav = h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '/' }, 'switchyard'),
    h('nav', {}, links.map(([href, label, key]) => h('a', { href, class: key === active ? 'active' : '' }, label))),
    h('span', { class: 'session' }, status),
  );
  document.body.prepend(nav);
  return session;
}

/** A modal yes/no; resolves true on confirm. */
export function confirmDialog(message, action = 'Confirm') {
  return new Promise((resolve) => {
    const dlg = h(
      'dialog',
      { class: 'confirm' },
      h('p', {}, message),
      h(
        'div',
        { class: 'buttons' },
        h('button', { onclick: () => (dlg.close(), resolve(false)) }, 'Cancel'),
        h('button', { class: 'danger', onclick: () => (dlg.close(), resolve(true)) }, action),
      ),
    );
    dlg.addEventListener('cancel', () => resolve(false));
    dlg.addEventListener('close', () => dlg.remove());
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** A line at the top of the page saying how an action went. */
export function notify(text, kind = 'ok') {
  const el = h('div', { class: `toast ${kind}`, role: 'status' }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 10_000 : 5_000);
}

export function age(iso) {
  if (!iso) return '-';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400) return `${(s / 3600).toFixed(1)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function num(v, digits = 4) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '-';
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(digits);
}

export function bytes(n) {
  if (typeof n !== 'number') return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(n >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export const stateClass = (s) => `state state-${String(s).replace(/[^a-z]/g, '')}`;
