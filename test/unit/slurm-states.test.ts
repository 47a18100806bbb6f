// What sacct and squeue print, parsed, and mapped to unit states (with the runner's own status).
import { describe, expect, it } from 'vitest';
import type { AttemptStatus } from '../../scripts/lib/runner/attempt-spec.js';
import { expandTasks, parseSacct, parseSqueueJson, unitState, type SlurmJob } from '../../scripts/lib/slurm/job-states.js';

const SACCT = [
  '101|PENDING|0:0|0|00:00:00|None assigned|Priority',
  '102|PENDING|0:0|0|00:00:00|None assigned|Resources',
  '103|RUNNING|0:0|0|00:01:02|n1|None',
  '104|PREEMPTED|0:15|0|00:03:00|n2|None',
  '104|RUNNING|0:0|1|00:00:10|n3|None',
  '105|NODE_FAIL|0:0|0|00:10:00|n4|None',
  '106|BOOT_FAIL|0:0|0|00:00:00|n5|None',
  '107|TIMEOUT|0:15|0|01:00:00|n1|None',
  '108|OUT_OF_MEMORY|0:125|0|00:00:30|n1|None',
  '109|FAILED|3:0|0|00:00:05|n1|NonZeroExitCode',
  '110|CANCELLED by 1000|0:15|0|00:00:05|n1|None',
  '111|COMPLETED|0:0|0|00:05:00|n1|None',
  '112|RUNNING+|0:0|0|00:00:01|n1|None',
  '200_[2-3,5%2]|PENDING|0:0|0|00:00:00|None assigned|JobArrayTaskLimit',
  '200_0|COMPLETED|0:0|0|00:00:04|n1|None',
  '200_1|RUNNING|0:0|0|00:00:04|n1|None',
  '',
].join('\n');

const at = (jobs: Map<string, SlurmJob>, id: string, runner: AttemptStatus | null = null) => unitState(jobs.get(id), runner, { jobId: id, sinceSubmitMs: 120_000 });

function status(state: AttemptStatus['state'], reason: string | null, exit: number | null): AttemptStatus {
  return { run_id: 'r', attempt: 1, state, reason, exit_code: exit, signal: null, pid: 1, started_at: '', ended_at: '', restored_step: null, last_step: 3 };
}

describe('sacct', () => {
  const jobs = parseSacct(SACCT);

  it('pending with its reason, in words and by name', () => {
    expect(at(jobs, '101')).toEqual({ state: 'pending', reason: 'queued behind jobs of higher priority (Priority)', exit_code: null });
    expect(at(jobs, '102').reason).toBe('waiting for resources (Resources)');
  });

  it('running; a requeued job by its last row; a trailing + read by the first word', () => {
    expect(at(jobs, '103').state).toBe('running');
    expect(jobs.get('104')).toMatchObject({ state: 'RUNNING', restarts: 1, node: 'n3' });
    expect(at(jobs, '112').state).toBe('running');
  });

  it('NODE_FAIL and BOOT_FAIL are lost; TIMEOUT timeout; OUT_OF_MEMORY failed with that reason', () => {
    expect(at(jobs, '105')).toMatchObject({ state: 'lost', reason: 'its node failed (NODE_FAIL on n4)' });
    expect(at(jobs, '106').state).toBe('lost');
    expect(at(jobs, '107').state).toBe('timeout');
    expect(at(jobs, '108')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/^out of memory \(OUT_OF_MEMORY\)/) });
  });

  it('FAILED with its exit code; CANCELLED by <uid>; COMPLETED', () => {
    expect(at(jobs, '109')).toEqual({ state: 'failed', reason: 'FAILED, exit 3', exit_code: 3 });
    expect(at(jobs, '110')).toMatchObject({ state: 'cancelled', reason: 'cancelled in SLURM by 1000' });
    expect(at(jobs, '111')).toEqual({ state: 'succeeded', reason: null, exit_code: 0 });
  });

  it('array tasks by id, a pending collapsed row expanded', () => {
    expect([...jobs.keys()].filter((k) => k.startsWith('200_')).sort()).toEqual(['200_0', '200_1', '200_2', '200_3', '200_5']);
    expect(at(jobs, '200_5').reason).toBe('waiting: the array runs max_jobs tasks at once (JobArrayTaskLimit)');
    expect(at(jobs, '200_0').state).toBe('succeeded');
    expect(expandTasks('0-6:2%3')).toEqual([0, 2, 4, 6]);
  });

  it('a preempted job', () => {
    expect(at(parseSacct('300|PREEMPTED|0:15|0|00:03:00|n2|None\n'), '300')).toMatchObject({ state: 'preempted' });
  });
});

describe('with the runner status', () => {
  const jobs = parseSacct(SACCT);

  it('an ended job ends as its runner says (a checkpointed stop), unless SLURM knows more', () => {
    expect(at(jobs, '109', status('preempted', 'the runner was sent SIGUSR1', 143))).toEqual({ state: 'preempted', reason: 'the runner was sent SIGUSR1', exit_code: 143 });
    expect(at(jobs, '107', status('preempted', 'the runner was sent SIGTERM', 143)).state).toBe('timeout');
    expect(at(jobs, '105', status('failed', 'x', 1)).state).toBe('lost');
  });

  it("a live job is SLURM's, whatever an earlier start of it wrote", () => {
    expect(at(jobs, '104', status('preempted', 'the runner was sent SIGTERM', 143)).state).toBe('running');
  });

  it('a job SLURM does not list: just submitted is pending, later its runner decides, else lost', () => {
    expect(unitState(undefined, null, { jobId: '9', sinceSubmitMs: 1000 }).state).toBe('pending');
    expect(unitState(undefined, status('succeeded', null, 0), { jobId: '9', sinceSubmitMs: 600_000 }).state).toBe('succeeded');
    expect(unitState(undefined, null, { jobId: '9', sinceSubmitMs: 600_000 })).toMatchObject({ state: 'lost', reason: expect.stringMatching(/no longer lists job 9/) });
  });
});

describe('squeue --json', () => {
  it("22.05's shape: wait status as a number, array ids, a pending array's task string", () => {
    const text = JSON.stringify({
      jobs: [
        { job_id: 1, array_job_id: 0, array_task_id: null, job_state: 'FAILED', state_reason: 'NonZeroExitCode', exit_code: 768, restart_cnt: 0, nodes: 'vm' },
        { job_id: 3, array_job_id: 2, array_task_id: 0, job_state: 'RUNNING', state_reason: 'None', exit_code: 0, restart_cnt: 1, nodes: 'vm' },
        { job_id: 2, array_job_id: 2, array_task_id: null, array_task_string: '1-3%2', job_state: 'PENDING', state_reason: 'JobArrayTaskLimit', exit_code: 0, restart_cnt: 0, nodes: '' },
      ],
    });
    const jobs = parseSqueueJson(text);
    expect(jobs.get('1')).toMatchObject({ state: 'FAILED', exit_code: 3, signal: null });
    expect(jobs.get('2_0')).toMatchObject({ state: 'RUNNING', restarts: 1 });
    expect([...jobs.keys()].sort()).toEqual(['1', '2_0', '2_1', '2_2', '2_3']);
  });

  it("newer versions' shape: states as lists, numbers as { set, number }, exit codes as objects", () => {
    const text = JSON.stringify({
      jobs: [{ job_id: 7, array_job_id: { set: true, number: 0 }, array_task_id: { set: false, number: 0 }, job_state: ['TIMEOUT'], state_reason: 'None', exit_code: { status: ['SIGNALED'], return_code: { set: true, number: 0 }, signal: { signal_id: { set: true, number: 15 } } }, restart_cnt: 0 }],
    });
    expect(parseSqueueJson(text).get('7')).toMatchObject({ state: 'TIMEOUT', exit_code: 0, signal: 15 });
  });

  it('an answer that lists no jobs says nothing of them: a throw, not every job gone', () => {
    expect(() => parseSqueueJson('{"jobs": [')).toThrow('squeue: its answer is damaged (not JSON)');
    expect(() => parseSqueueJson('{"meta": {}}')).toThrow('squeue: its answer has no list of jobs');
    expect(parseSqueueJson('{"errors": [], "jobs": []}').size).toBe(0);
  });
});
