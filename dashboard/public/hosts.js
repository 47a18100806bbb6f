// Every inventory host as the server's watcher last probed it: up or down (a dead host is down
// within its connect timeout), load, memory, disk, each GPU, a utilisation timeline, tmux
// sessions and the runs placed there with what they cost so far.
import { age, bytes, canAct, getJSON, h, header, notify, postJSON, stateClass } from './common.js';

const pct = (v) => (v === null || v === undefined ? '-' : `${Math.round(v)}%`);

/** A small SVG timeline of GPU utilisation (or load per CPU where there is no GPU), stretched to its box. */
function timeline(history, cpus) {
  const W = 240;
  const H = 40;
  const pts = history.slice(-120);
  if (pts.length < 2) return h('span', { class: 'muted' }, 'timeline after a few probes');
  const gpu = pts.some((p) => p.utilPct !== null);
  const ys = pts.map((p) => (gpu ? p.utilPct : p.load1 !== null && cpus ? (100 * p.load1) / cpus : null));
  const t0 = pts[0].t;
  const span = Math.max(1, pts.at(-1).t - t0);
  const minutes = `last ${Math.round(span / 60000) || '<1'} min`;
  const known = ys.filter((y) => y !== null);
  if (!known.length) return h('small', { class: 'muted' }, `no readings, ${minutes}`);
  // An overloaded host (load above its CPU count) widens the scale instead of flattening on the top edge.
  const top = Math.max(100, ...known);
  const d = ys
    .map((y, i) => (y === null ? null : `${(((pts[i].t - t0) / span) * W).toFixed(1)},${(H - 1 - (y / top) * (H - 2)).toFixed(1)}`))
    .filter(Boolean)
    .map((p, i) => `${i ? 'L' : 'M'}${p}`)
    .join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', gpu ? 'GPU utilisation' : 'load per CPU');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d);
  svg.append(path);
  const now = known.at(-1);
  return h('div', { class: 'timeline' }, svg, h('small', { class: 'muted' }, `${gpu ? 'GPU util' : 'load/CPU'} ${Math.round(now)}%${top > 100 ? `, peak ${Math.round(top)}%` : ''}, ${minutes}`));
}

function gpuRows(health) {
  if (health.gpuHealth === 'none') return h('p', { class: 'muted' }, 'no GPU');
  if (health.gpuHealth === 'unhealthy') return h('p', { class: 'bad' }, `GPU unhealthy: ${health.gpuError ?? 'nvidia-smi did not answer'}`);
  return h(
    'table',
    { class: 'gpus' },
    h('thead', {}, h('tr', {}, ['gpu', 'util', 'memory', 'temp', 'power'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      health.gpus.map((g) =>
        h(
          'tr',
          {},
          h('td', {}, `${g.index} ${g.name}${g.mig ? ' (MIG)' : ''}`),
          h('td', {}, g.mig && g.utilPct === null ? 'MIG' : pct(g.utilPct)),
          h('td', {}, g.memUsedMiB === null ? '-' : `${g.memUsedMiB}/${g.memTotalMiB ?? '?'} MiB`),
          h('td', {}, g.tempC === null ? '-' : `${g.tempC} °C`),
          h('td', {}, g.powerW === null ? '-' : `${g.powerW} W`),
        ),
      ),
    ),
  );
}

function card(host) {
  const hl = host.health;
  const state = hl ? hl.state : 'probing';
  const sync = h('button', {
    disabled: !canAct() || state !== 'up',
    title: canAct() ? 'rsync the project to this host' : 'sign in to act',
    onclick: async (e) => {
      e.currentTarget.disabled = true;
      try {
        const r = await postJSON(`/api/hosts/${encodeURIComponent(host.name)}/sync`);
        notify(`synced to ${r.host}: ${r.filesTransferred} files, ${r.bytesTransferred} bytes`);
      } catch (err) {
        notify(`sync ${host.name}: ${err.message}`, 'error');
      }
    },
  }, 'Sync');
  return h(
    'article',
    { class: `host host-${state}`, 'data-host': host.name, 'data-state': state },
    h('header', {}, h('h2', {}, host.name), h('span', { class: stateClass(state === 'up' ? 'succeeded' : state === 'down' ? 'lost' : 'pending') }, state), sync),
    h('p', { class: 'muted' }, `${host.address}${host.fleets.length ? ` · fleet ${host.fleets.join(', ')}` : ''}${host.price_per_hour !== null ? ` · $${host.price_per_hour}/h` : ''}${hl ? ` · probed ${age(hl.probedAt)} ago${hl.latencyMs !== null ? ` in ${hl.latencyMs} ms` : ''}` : ''}`),
    hl?.state === 'down' ? h('p', { class: 'bad' }, hl.error ?? 'unreachable') : '',
    hl?.state === 'up'
      ? h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'load'), h('dd', {}, hl.load1 === null ? '-' : `${hl.load1}${hl.cpus ? ` / ${hl.cpus} CPUs` : ''}`),
          h('dt', {}, 'memory free'), h('dd', {}, hl.memAvailBytes === null ? '-' : `${bytes(hl.memAvailBytes)} of ${bytes(hl.memTotalBytes)}`),
          h('dt', {}, 'disk free'), h('dd', {}, hl.diskFreeBytes === null ? '-' : `${bytes(hl.diskFreeBytes)} of ${bytes(hl.diskTotalBytes)}`),
          h('dt', {}, 'tmux'), h('dd', {}, hl.tmux.length ? hl.tmux.join(', ') : 'none'),
        )
      : '',
    hl?.state === 'up' ? gpuRows(hl) : '',
    timeline(host.history, hl?.cpus ?? null),
    h(
      'div',
      { class: 'placed' },
      host.runs.length
        ? h('ul', {}, host.runs.map((r) => h('li', {}, h('a', { href: `/runs/${encodeURIComponent(r.run_id)}` }, r.run_id), ' ', h('span', { class: stateClass(r.state) }, r.state), r.cost !== null ? ` · $${r.cost.toFixed(2)}` : '')))
        : h('p', { class: 'muted' }, 'no runs here now'),
    ),
  );
}

async function refresh() {
  try {
    const data = await getJSON('/api/hosts');
    const up = data.hosts.filter((x) => x.health?.state === 'up').length;
    const down = data.hosts.filter((x) => x.health?.state === 'down').length;
    document.getElementById('summary').textContent = data.hosts.length
      ? `${data.hosts.length} host${data.hosts.length > 1 ? 's' : ''}: ${up} up, ${down} down${data.interval_ms ? `, probed every ${data.interval_ms / 1000}s` : ''}`
      : 'no hosts yet: add them under hosts in cluster_fleet_config.ts';
    document.getElementById('hosts').replaceChildren(...data.hosts.map(card));
    const agent = document.getElementById('agent');
    agent.textContent = data.agent.line;
    agent.className = data.agent.state === 'running' ? 'ok' : data.agent.state === 'stale' ? 'bad' : 'muted';
  } catch (err) {
    document.getElementById('summary').textContent = `could not load hosts: ${err.message}`;
  }
}

await header('hosts');
await refresh();
setInterval(() => document.visibilityState === 'visible' && refresh(), 2000);
