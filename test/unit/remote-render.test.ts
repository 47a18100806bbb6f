// What runs on a host, pinned down by golden files: the fixed remote scripts, the launch of an
// attempt (its tmux argv and the spec the runner reads), and the parsing of a poll's and a submit's answer.
import { describe, expect, it } from 'vitest';
import { hostLayout } from '../../scripts/lib/remote/host-layout.js';
import { parsePoll, parseSubmit, pollArgs, renderLaunch, submitCall } from '../../scripts/lib/remote/launch.js';
import { CANCEL_SCRIPT, FIND_SCRIPT, POLL_SCRIPT, PREPARE_SCRIPT, SUBMIT_SCRIPT } from '../../scripts/lib/remote/scripts.js';
import { testAttemptSpec } from '../helpers/runner-process.js';
import { expectGolden } from '../helpers/golden.js';

/** A launch as people review it: the session, the submit script's arguments one per line, the spec. */
const text = (l: ReturnType<typeof renderLaunch>) => [`session: ${l.session}`, `attempt dir: ${l.attemptDir}`, 'submit args:', ...l.args.map((a) => `  ${a}`), 'spec:', l.spec, ''].join('\n');

const spec = testAttemptSpec({
  run_id: 'knn-fleet-20261130T1200-0badf00d',
  unit_id: 'knn-fleet-20261130T1200-0badf00d/shards/3',
  attempt: 2,
  command: 'python3 search.py --grid "a b"',
  cwd: 'competitions/knn',
  shard_index: 3,
  shard_count: 6,
  store: 'file://.switchyard/store',
});

describe('remote rendering', () => {
  it('keeps the remote scripts as reviewed', () => {
    for (const [name, script] of Object.entries({ poll: POLL_SCRIPT, prepare: PREPARE_SCRIPT, submit: SUBMIT_SCRIPT, find: FIND_SCRIPT, cancel: CANCEL_SCRIPT })) {
      expectGolden(`remote/${name}.sh`, `${script}\n`);
    }
  });

  it('renders the launch of an attempt: the submit script arguments and the spec the runner reads', () => {
    const launch = renderLaunch(spec, { layout: hostLayout('switchyard'), runner: 'switchyard/runtime/run-attempt-0123456789abcdef.mjs', store: 'file://../store', sessionPrefix: 'night', outputDir: '/data/out' });
    expectGolden('remote/launch-fleet-shard.txt', text(launch));
    const plain = renderLaunch({ ...spec, unit_id: spec.run_id, shard_index: 0, shard_count: 1, attempt: 1 }, { layout: hostLayout('switchyard'), runner: 'switchyard/runtime/run-attempt-0123456789abcdef.mjs', store: 's3://bucket/team' });
    expectGolden('remote/launch-ssh.txt', text(plain));
  });

  it('reads a poll of several attempts of one host, a cut-off event line left for the next poll', () => {
    const m = '--m--';
    const status = JSON.stringify({ state: 'succeeded', reason: null, exit_code: 0 });
    const live = JSON.stringify({ events: 4, pid: 7, metrics: '{"step":9}', last_line: 'epoch 9  ' }, null, 2);
    const out = [
      ...['alive', '', '', '{"type":"restored","step":3}\nnot json\n{"type":"ckpt.commi', '{"step":5}\n', 'epoch 5'],
      ...['gone', status, '', '', '', ''],
      ...['alive', '{"state":"running"}', live, '{"type":"ckpt.pruned","step":1}\n', '', ''],
      ...['alive', '{"state":"running"}', '{"events": 4, "met', '', '', ''],
    ].map((s) => s + m).join('');
    const [a, b, c, d] = parsePoll(out, m, 4);
    expect(a).toMatchObject({ alive: true, status: null, events: [{ type: 'restored', step: 3 }, null], metrics: { step: 5 }, lastLine: 'epoch 5' });
    expect(b).toMatchObject({ alive: false, status: { state: 'succeeded' }, events: [], metrics: null, lastLine: null });
    // a live view stands in for the metrics and the log; one that does not parse shows neither
    expect(c).toMatchObject({ alive: true, status: { state: 'running' }, events: [{ type: 'ckpt.pruned', step: 1 }], metrics: { step: 9 }, lastLine: 'epoch 9' });
    expect(d).toMatchObject({ alive: true, events: [], metrics: null, lastLine: null });
    expect(pollArgs(m, [{ dir: 'd1', session: 's1', eventsFrom: 2 }])).toEqual([m, 'switchyard', 'd1', 's1', '2']);
  });

  it('starts the attempts of a host in one call: their words in order, one spec line each, one answer line each', () => {
    const layout = hostLayout('switchyard');
    const opts = { layout, runner: 'switchyard/runtime/run-attempt-0123456789abcdef.mjs', store: 'file://../store' };
    const launches = [renderLaunch(spec, opts), renderLaunch({ ...spec, attempt: 3 }, opts)];
    const call = submitCall(launches);
    expect(call.args).toEqual(['switchyard', ...launches[0]!.args, ...launches[1]!.args]);
    expect(call.stdin.split('\n').map((l) => (l ? JSON.parse(l).attempt : l))).toEqual([2, 3, '']);
    expect(parseSubmit('0 \n12 sy-knn-s3-2\n', 3)).toEqual([{ code: 0, detail: '' }, { code: 12, detail: 'sy-knn-s3-2' }, null]);
    expect(parseSubmit('127 tmux: command not found\n', 1)).toEqual([{ code: 127, detail: 'tmux: command not found' }]);
  });
});
