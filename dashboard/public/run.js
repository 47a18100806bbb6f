// One run: what it is (pins, units, attempts, checkpoints, the replay command), its metrics
// charted as they grow, its log live, and the operator's actions on it.
import { age, canAct, confirmDialog, getJSON, h, header, notify, num, postJSON, stateClass } from './common.js';
import { MetricChart } from './chart.js';
import { LiveLog } from './log.js';

const id = decodeURIComponent(location.pathname.split('/').pop());
const $ = (s) => document.getElementById(s);
const url = new URL(location.href);
const LIVE = new Set(['running', 'pending', 'unreachable', 'queued']);

let detail = null;
const chart = new MetricChart($('chart'));
const log = new LiveLog({ pre: $('log'), results: $('log-results'), hits: $('log-hits'), state: $('log-state'), search: $('log-search') });
const metrics = new Map(); // run id → columns

const api = (run, tail) => `/api/runs/${encodeURIComponent(run)}${tail}`;
const shard = () => (detail?.run.sharded ? Number($('shard').value || 0) : undefined);
const logQuery = () => {
  const q = new URLSearchParams({ stream: $('stream').value });
  if (shard() !== undefined) q.set('shard', String(shard()));
  return q;
};

function setUrl(key, value) {
  if (value) url.searchParams.set(key, value);
  else url.searchParams.delete(key);
  history.replaceState(null, '', url);
}

function openLog() {
  log.open(api(id, `/log/stream?${logQuery()}`));
  $('log-download').href = api(id, `/log?${logQuery()}`);
}

// ---- chart
function compareIds() {
  return ($('compare').value || '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /^[a-z0-9][A-Za-z0-9_-]*$/.test(s) && s !== id);
}

async function loadMetrics(run) {
  const have = metrics.get(run);
  const q = new URLSearchParams({ shard: String(run === id ? (shard() ?? 0) : 0) });
  if (have) q.set('have', have.version);
  const m = await getJSON(api(run, `/metrics?${q}`));
  if (!m.unchanged) metrics.set(run, m);
}

async function drawChart() {
  const runs = [id, ...compareIds()];
  await Promise.all(runs.map((r) => loadMetrics(r).catch((err) => notify(`${r}: ${err.message}`, 'error'))));
  const shown = runs.filter((r) => metrics.has(r)).map((r) => ({ id: r, label: r === id ? 'this run' : r, metrics: metrics.get(r) }));
  const keys = [...new Set(shown.flatMap((r) => Object.keys(r.metrics.series)))];
  const select = $('metric');
  if (keys.join() !== [...select.options].map((o) => o.value).join()) {
    const want = select.value || url.searchParams.get('metric') || (keys.includes('loss') ? 'loss' : keys[0]);
    select.replaceChildren(...keys.map((k) => h('option', { value: k }, k)));
    if (want) select.value = want;
  }
  const hasTime = shown.some((r) => r.metrics.time);
  $('xaxis').options[1].disabled = !hasTime;
  if (!hasTime && $('xaxis').value === 'time') $('xaxis').value = 'step';
  // No empty box where there is nothing to draw.
  $('chart').hidden = !select.value;
  if (!select.value) {
    $('chart-note').textContent = detail && detail.units.every((u) => !LIVE.has(u.state)) ? 'no metrics: the experiment wrote none to $SWITCHYARD_METRICS' : 'no metrics yet';
    return;
  }
  const points = chart.draw({ runs: shown, metric: select.value, xKind: $('xaxis').value, weight: Number($('smooth').value), log: $('logscale').checked });
  $('chart').dataset.points = String(points);
  const live = metrics.get(id)?.live ? ' · live from where it runs' : '';
  $('chart-note').textContent = `${points} points${live}${hasTime ? '' : ' · wall clock needs a time field in the metrics lines'}`;
}

// ---- details
function attemptsTable(units) {
  return h(
    'table',
    { class: 'units' },
    h('thead', {}, h('tr', {}, ['unit', 'attempt', 'backend', 'host', 'state', 'reason', 'restored', 'last step', 'started', 'ended'].map((t) => h('th', { class: t === 'restored' || t === 'last step' ? 'num' : '' }, t)))),
    h(
      'tbody',
      {},
      units.flatMap((u) =>
        u.attempts.map((a, i) =>
          h(
            'tr',
            { 'data-unit': u.unit, class: i === u.attempts.length - 1 ? 'current' : 'old' },
            h('td', {}, detail.run.sharded ? `shard ${u.unit}` : '-'),
            h('td', {}, `#${a.n}`),
            h('td', {}, a.backend),
            h('td', { class: 'host' }, a.host ?? '-'),
            h('td', {}, h('span', { class: stateClass(i === u.attempts.length - 1 ? u.state : a.state) }, i === u.attempts.length - 1 ? u.state : a.state)),
            h('td', {}, a.reason ?? (a.exit_code !== null ? `exit ${a.exit_code}` : '-')),
            h('td', { class: 'num' }, a.restored_step ?? '-'),
            h('td', { class: 'num' }, (i === u.attempts.length - 1 ? u.ckpt : null) ?? a.last_step ?? '-'),
            h('td', { title: a.started_at }, age(a.started_at)),
            h('td', { title: a.ended_at ?? '' }, a.ended_at ? age(a.ended_at) : '-'),
          ),
        ),
      ),
    ),
  );
}

function actionButton(label, run, opts = {}) {
  return h(
    'button',
    {
      class: opts.danger ? 'danger' : '',
      disabled: !canAct(),
      title: canAct() ? '' : 'sign in to act',
      onclick: async (e) => {
        const btn = e.currentTarget; // gone from the event once it has been dispatched
        if (opts.confirm && !(await confirmDialog(opts.confirm, label))) return;
        btn.disabled = true;
        try {
          const body = { ...(opts.body?.() ?? {}), ...(opts.confirm ? { confirm: true } : {}) };
          const out = await postJSON(api(id, `/${run}`), body);
          notify(`${label}: ${opts.done ? opts.done(out) : 'done'}`);
        } catch (err) {
          notify(`${label}: ${err.message}`, 'error');
        } finally {
          btn.disabled = !canAct();
          refreshDetail();
        }
      },
    },
    label,
  );
}

function renderActions() {
  const { run, units } = detail;
  const live = units.some((u) => LIVE.has(u.state));
  const failed = units.filter((u) => !LIVE.has(u.state) && u.state !== 'succeeded').map((u) => u.unit);
  const out = [];
  if (live) out.push(actionButton('Stop', 'stop', { danger: true, confirm: `Checkpoint and stop ${run.run_id}? (grace ${run.grace_sec}s; make train resumes it)`, done: (o) => `${o.running.length ? `still running: ${o.running.join(', ')}` : 'stopped'}` }));
  if (run.sharded && failed.length) out.push(actionButton(`Retry shards ${failed.join(', ')}`, 'retry', { confirm: `Run shards ${failed.join(', ')} of ${run.run_id} again from their checkpoints?`, body: () => ({ shards: failed }), done: (o) => `shards ${o.shards.join(', ')} on ${o.host}` }));
  out.push(actionButton('Pull', 'pull', { done: (o) => `${o.files} files into ${o.dest}` }));
  if (units.every((u) => u.state === 'succeeded')) {
    out.push(actionButton('Submit (dry)', 'submit', { body: () => ({ dry: true }), done: (o) => `recorded, local score ${JSON.stringify(o.score)}` }));
    out.push(actionButton('Submit to Kaggle', 'submit', { danger: true, confirm: `Upload ${run.run_id}'s submission to Kaggle? Each upload counts against the daily limit.`, body: () => ({ dry: false }), done: (o) => (o.dry ? 'recorded (nothing uploaded)' : 'uploaded') }));
  }
  if (!canAct()) out.push(h('span', { class: 'muted' }, 'read-only: sign in to act'));
  $('actions').replaceChildren(...out);
}

async function refreshDetail() {
  try {
    detail = await getJSON(api(id, ''));
  } catch (err) {
    $('title').textContent = id;
    $('subtitle').textContent = err.message;
    return;
  }
  const { run, units, checkpoints } = detail;
  document.title = `${run.run_id} · switchyard`;
  $('title').textContent = run.run_id;
  const state = units.length ? [...new Set(units.map((u) => u.state))].join(', ') : 'created';
  $('subtitle').replaceChildren(
    h('span', { class: stateClass(units[0]?.state ?? 'created') }, state),
    ` · ${run.experiment} · created ${age(run.created_at)} ago`,
    run.fleet ? ` · fleet ${run.fleet}` : '',
    run.replay_of ? ` · replay of ${run.replay_of}` : '',
    units.length === 1 && units[0].metrics ? ` · ${Object.entries(units[0].metrics).map(([k, v]) => `${k} ${num(v)}`).join(' ')}` : '',
  );
  renderActions();
  $('units').replaceChildren(units.length ? attemptsTable(units) : h('p', { class: 'muted' }, 'no attempts yet'));
  $('ckpts').replaceChildren(
    ...checkpoints.map((c) => h('p', {}, run.sharded ? `shard ${c.unit}: ` : '', c.steps.length ? `${c.steps.length} step${c.steps.length > 1 ? 's' : ''}: ${c.steps.slice(-12).join(', ')}${c.steps.length > 12 ? ' …' : ''}` : 'none')),
  );
  $('replay').textContent = detail.replay;
  $('pins').textContent = JSON.stringify(run.pins, null, 2);
  const pick = $('shard');
  if (run.sharded && pick.options.length !== units.length) {
    $('shard-pick').hidden = false;
    pick.replaceChildren(...units.map((u) => h('option', { value: u.unit }, `${u.unit} (${u.slot ?? '-'})`)));
    pick.value = url.searchParams.get('shard') ?? '0';
  }
}

await header('runs');
$('compare').value = url.searchParams.get('compare') ?? '';
$('logscale').checked = url.searchParams.get('log') === '1';
$('xaxis').value = url.searchParams.get('x') === 'time' ? 'time' : 'step';
if (url.searchParams.get('smooth')) $('smooth').value = url.searchParams.get('smooth');
$('smooth-value').textContent = $('smooth').value;
await refreshDetail();
openLog();
await drawChart();

$('smooth').addEventListener('input', () => (($('smooth-value').textContent = $('smooth').value), setUrl('smooth', $('smooth').value), drawChart()));
$('logscale').addEventListener('change', () => (setUrl('log', $('logscale').checked ? '1' : ''), drawChart()));
$('xaxis').addEventListener('change', () => (setUrl('x', $('xaxis').value === 'time' ? 'time' : ''), drawChart()));
$('metric').addEventListener('change', () => (setUrl('metric', $('metric').value), drawChart()));
$('compare').addEventListener('change', () => (setUrl('compare', compareIds().join(',')), drawChart()));
$('stream').addEventListener('change', openLog);
$('shard').addEventListener('change', () => (setUrl('shard', $('shard').value), metrics.delete(id), openLog(), drawChart()));
addEventListener('resize', () => chart.resize());

setInterval(async () => {
  if (document.visibilityState !== 'visible') return;
  await refreshDetail();
  await drawChart(); // cheap when nothing grew: the server answers `unchanged`
}, 3000);
