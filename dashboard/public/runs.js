// The runs table: filters, sort and page kept in the URL (a link reproduces the view), the
// server filters and sorts, the page refreshes itself every few seconds.
import { age, getJSON, h, header, num, stateClass } from './common.js';

const FILTERS = ['q', 'competition', 'state', 'backend', 'host'];
const PAGE = 100;
const form = document.getElementById('filters');
const tbody = document.querySelector('#runs tbody');
const picked = new Set();

const params = () => new URLSearchParams(location.search);

function setParam(key, value) {
  const p = params();
  if (value) p.set(key, value);
  else p.delete(key);
  if (key !== 'offset') p.delete('offset');
  history.replaceState(null, '', `${location.pathname}${p.size ? `?${p}` : ''}`);
  refresh();
}

function fillSelect(select, values) {
  const current = params().get(select.name) ?? '';
  const have = new Set([...select.options].map((o) => o.value));
  for (const v of values) if (!have.has(v)) select.append(h('option', { value: v }, v));
  select.value = current;
}

function unitsCell(r) {
  if (r.sharded) return `${r.units.done}/${r.units.total} shards`;
  return r.attempt === null ? '-' : `#${r.attempt}`;
}

function row(r) {
  const box = h('input', { type: 'checkbox', 'aria-label': `compare ${r.run_id}`, checked: picked.has(r.run_id) });
  box.addEventListener('change', () => (box.checked ? picked.add(r.run_id) : picked.delete(r.run_id), compareLink()));
  return h(
    'tr',
    { 'data-run': r.run_id },
    h('td', { class: 'pick' }, box),
    h('td', {}, r.experiment),
    h('td', { class: 'id' }, h('a', { href: `/runs/${encodeURIComponent(r.run_id)}` }, r.run_id)),
    h('td', {}, r.backend),
    h('td', {}, r.hosts.join(', ') || '-'),
    h('td', {}, h('span', { class: stateClass(r.state) }, r.state)),
    h('td', {}, unitsCell(r)),
    h('td', { class: 'num' }, r.ckpt_step ?? '-'),
    h('td', { class: 'num', title: r.metric?.name ?? '' }, r.metric ? `${r.metric.name} ${num(r.metric.value)}` : '-'),
    h('td', { class: 'num', title: r.created_at }, age(r.created_at)),
  );
}

function compareLink() {
  const a = document.getElementById('compare');
  const ids = [...picked];
  a.hidden = ids.length < 2;
  if (ids.length >= 2) a.href = `/runs/${encodeURIComponent(ids[0])}?compare=${ids.slice(1).map(encodeURIComponent).join(',')}`;
  a.textContent = `compare ${ids.length}`;
}

let inFlight = false;
async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const p = params();
    const q = new URLSearchParams();
    for (const k of [...FILTERS, 'sort', 'dir', 'offset']) if (p.get(k)) q.set(k, p.get(k));
    q.set('limit', String(PAGE));
    const data = await getJSON(`/api/runs?${q}`);
    fillSelect(form.competition, data.facets.competitions);
    fillSelect(form.state, data.facets.states);
    fillSelect(form.backend, data.facets.backends);
    fillSelect(form.host, data.facets.hosts);
    tbody.replaceChildren(...data.rows.map(row));
    const shown = data.rows.length;
    document.getElementById('summary').textContent = data.total ? `${data.total} run${data.total === 1 ? '' : 's'}${shown < data.total ? `, ${data.offset + 1}–${data.offset + shown} shown` : ''}` : 'no runs yet: make train experiment=<slug> starts one';
    const pager = document.getElementById('pager');
    pager.replaceChildren(
      data.offset > 0 ? h('a', { href: '#', onclick: (e) => (e.preventDefault(), setParam('offset', String(Math.max(0, data.offset - PAGE)))) }, '← newer') : '',
      data.offset + shown < data.total ? h('a', { href: '#', onclick: (e) => (e.preventDefault(), setParam('offset', String(data.offset + PAGE))) }, 'older →') : '',
    );
    for (const th of document.querySelectorAll('th[data-sort]')) {
      const on = (p.get('sort') ?? 'created') === th.dataset.sort;
      th.classList.toggle('sorted', on);
      th.dataset.dir = on ? (p.get('dir') ?? (th.dataset.sort === 'created' ? 'desc' : 'asc')) : '';
    }
  } catch (err) {
    document.getElementById('summary').textContent = `could not load runs: ${err.message}`;
  } finally {
    inFlight = false;
  }
}

// The rows and the session are asked for together: the table does not wait on the header.
const first = refresh();
await header('runs');
for (const k of FILTERS) form[k].value = params().get(k) ?? '';
form.addEventListener('submit', (e) => e.preventDefault());
form.q.addEventListener('input', () => setParam('q', form.q.value.trim().toLowerCase()));
for (const k of FILTERS.slice(1)) form[k].addEventListener('change', () => setParam(k, form[k].value));
for (const th of document.querySelectorAll('th[data-sort]')) {
  th.addEventListener('click', () => {
    const p = params();
    const same = (p.get('sort') ?? 'created') === th.dataset.sort;
    p.set('sort', th.dataset.sort);
    p.set('dir', same && th.dataset.dir === 'asc' ? 'desc' : same ? 'asc' : th.dataset.sort === 'created' ? 'desc' : 'asc');
    history.replaceState(null, '', `?${p}`);
    refresh();
  });
}
await first;
setInterval(() => document.visibilityState === 'visible' && refresh(), 5000);
