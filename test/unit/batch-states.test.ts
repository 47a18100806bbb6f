// What Batch says of a job and its tasks, as the states of the units they run: waiting (with
// why), running, and each way a task ends, by its exit code (50001: preempted; 50005: the
// maximum run duration, a timeout; other VM-level codes once Batch stops retrying: lost).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { protos } from '@google-cloud/batch';
import { describe, expect, it } from 'vitest';
import { JOB_STATES, TASK_STATES, tasksTell, taskStates } from '../../scripts/lib/batch/task-states.js';
import { REPO } from '../helpers/sandbox.js';

type Job = protos.google.cloud.batch.v1.IJob;
type Task = protos.google.cloud.batch.v1.ITask;
type JobState = NonNullable<NonNullable<Job['status']>['state']>;

const NAME = 'projects/p/locations/us-central1/jobs/sy-knn-0badf00d-1a2b3c4d5e';
const jobIn = (state: JobState, count = 1, events: string[] = []): Job => ({
  name: NAME,
  // int64 as the REST client gives it: a string
  taskGroups: [{ name: `${NAME}/taskGroups/group0`, taskCount: String(count) as unknown as number }],
  status: { state, statusEvents: events.map((description, i) => ({ description, eventTime: { seconds: String(1000 + i) } })) },
});

/** A task, its runs ended with these exit codes (oldest first); enums as numbers, as the client gives them. */
function task(index: number, state: (typeof TASK_STATES)[number], exits: number[] = []): Task {
  return {
    name: `${NAME}/taskGroups/group0/tasks/${index}`,
    status: {
      state: TASK_STATES.indexOf(state),
      // proto3 JSON leaves out an exit code of 0
      statusEvents: exits.map((code, i) => ({ type: 'STATUS_CHANGED', eventTime: { seconds: String(2000 + i) }, taskExecution: code ? { exitCode: code } : {} })),
    },
  };
}

describe('taskStates', () => {
  it('holds its state tables to the client protos', () => {
    const v1 = JSON.parse(readFileSync(path.join(REPO, 'node_modules/@google-cloud/batch/build/protos/protos.json'), 'utf8')).nested.google.nested.cloud.nested.batch.nested.v1.nested;
    const byNumber = (values: Record<string, number>) => Object.entries(values).sort((a, b) => a[1] - b[1]).map(([k]) => k);
    expect(byNumber(v1.JobStatus.nested.State.values)).toEqual([...JOB_STATES]);
    expect(byNumber(v1.TaskStatus.nested.State.values)).toEqual([...TASK_STATES]);
  });

  it('says why tasks wait: queued, VMs being created, the latest job event', () => {
    expect(taskStates(jobIn('QUEUED', 2, ['Job state is set from QUEUED to QUEUED for job\nmore']), [])).toEqual([
      { state: 'pending', reason: 'queued in Batch: Job state is set from QUEUED to QUEUED for job', exit_code: null },
      { state: 'pending', reason: 'queued in Batch: Job state is set from QUEUED to QUEUED for job', exit_code: null },
    ]);
    const scheduled = taskStates(jobIn(JOB_STATES.indexOf('SCHEDULED'), 2, ['b', 'a']), [task(0, 'PENDING'), task(1, 'ASSIGNED')]);
    expect(scheduled.map((s) => [s.state, s.reason])).toEqual([
      ['pending', 'Batch is creating its VMs: a'],
      ['pending', 'its VM is starting it'],
    ]);
    expect(taskStates({ taskGroups: [{ taskCount: 1 }] }, [])).toEqual([{ state: 'pending', reason: 'submitted to Batch', exit_code: null }]);
  });

  it('maps each task by its index, whatever order the list comes in', () => {
    const states = taskStates(jobIn('RUNNING', 4), [task(3, 'SUCCEEDED', [0]), task(1, 'RUNNING'), task(0, 'FAILED', [2])]);
    expect(states).toEqual([
      { state: 'failed', reason: 'exit 2', exit_code: 2 },
      { state: 'running', reason: null, exit_code: null },
      { state: 'pending', reason: 'waiting for a VM', exit_code: null },
      { state: 'succeeded', reason: null, exit_code: 0 },
    ]);
  });

  it('tells how a failed task ended from its last exit code', () => {
    const ended = (exits: number[]) => taskStates(jobIn('FAILED'), [task(0, 'FAILED', exits)])[0];
    expect(ended([50001, 50001, 50001, 50001])).toEqual({ state: 'preempted', reason: 'its spot VM was preempted (Batch exit 50001), retries used up', exit_code: 50001 });
    expect(ended([50005])).toEqual({ state: 'timeout', reason: 'it ran past max_run_duration (Batch exit 50005)', exit_code: 50005 });
    expect(ended([50001, 50002])).toEqual({ state: 'lost', reason: 'its VM stopped reporting to Batch (Batch exit 50002), retries used up', exit_code: 50002 });
    for (const code of [50003, 50004, 50006]) expect(ended([code])!.state).toBe('lost');
    expect(ended([50001, 137])).toEqual({ state: 'failed', reason: 'exit 137', exit_code: 137 });
    expect(ended([])).toEqual({ state: 'lost', reason: 'Batch reports it failed, without an exit code', exit_code: null });
  });

  it('keeps a task Batch is retrying after a VM failure pending, saying so', () => {
    expect(taskStates(jobIn('RUNNING'), [task(0, 'PENDING', [50001])])[0]).toEqual({
      state: 'pending',
      reason: 'its spot VM was preempted (Batch exit 50001); Batch runs it again',
      exit_code: null,
    });
  });

  it('needs the job only when a task asked about waits or is not listed: otherwise one listing tells all', () => {
    const tasks = [task(0, 'RUNNING'), task(1, 'SUCCEEDED', [0]), task(2, 'FAILED', [50001]), task(3, 'PENDING', [50001]), task(4, 'ASSIGNED')];
    expect(tasksTell(tasks, [0, 1, 2, 4])).toBe(true);
    expect(tasksTell(tasks, [0, 3])).toBe(false);
    expect(tasksTell(tasks, [5])).toBe(false);
    expect(taskStates(null, tasks.filter((t) => t !== tasks[3])).map((s) => s.state)).toEqual(['running', 'succeeded', 'preempted', 'pending', 'pending']);
    expect(taskStates(null, [])).toEqual([]);
  });

  it('reads enums given by name as well as by number', () => {
    const named: Task = { name: `${NAME}/taskGroups/group0/tasks/0`, status: { state: 'FAILED', statusEvents: [{ taskExecution: { exitCode: 50005 } }] } };
    expect(taskStates(jobIn('FAILED'), [named])[0]!.state).toBe('timeout');
  });

  it('says why a job that failed before it ran a task failed: its latest event (a quota, a region)', () => {
    const quota = 'Job state is set from SCHEDULED to FAILED for job sy-knn. Quota NVIDIA_L4_GPUS exceeded. Limit: 0.0 in region us-central1.';
    const failed = jobIn('FAILED', 2, ['Job state is set from QUEUED to SCHEDULED for job sy-knn.', quota]);
    expect(taskStates(failed, [task(0, 'UNEXECUTED')]).map((s) => s.reason)).toEqual([`it never ran: the job ended FAILED: ${quota}`, `the job ended FAILED without this task: ${quota}`]);
  });

  it('ends the tasks of a cancelled job cancelled, and those a finished job never ran lost', () => {
    expect(taskStates(jobIn('CANCELLED', 3), [task(0, 'SUCCEEDED', [0]), task(1, 'UNEXECUTED')]).map((s) => s.state)).toEqual(['succeeded', 'cancelled', 'cancelled']);
    expect(taskStates(jobIn('CANCELLATION_IN_PROGRESS', 2), [task(0, 'RUNNING'), task(1, 'PENDING')]).map((s) => [s.state, s.reason])).toEqual([
      ['running', null],
      ['pending', 'the job is being cancelled'],
    ]);
    expect(taskStates(jobIn('FAILED', 2), [task(0, 'FAILED', [1]), task(1, 'UNEXECUTED')])[1]).toEqual({ state: 'lost', reason: 'it never ran: the job ended FAILED', exit_code: null });
    expect(taskStates(jobIn('SUCCEEDED', 2), [task(0, 'SUCCEEDED', [0])])[1]).toEqual({ state: 'lost', reason: 'the job ended SUCCEEDED without this task', exit_code: null });
  });
});
