// The exit codes Batch reserves for what happened to a task's VM rather than in it
// (https://cloud.google.com/batch/docs/troubleshooting#reserved-exit-codes). The job retries a
// task on the VM-level ones; 50005, the task's maximum run duration, is its timeout.

/** VM-level failures a task is retried on, each with what it means. */
export const VM_FAILURES: ReadonlyMap<number, string> = new Map([
  [50001, 'its spot VM was preempted'],
  [50002, 'its VM stopped reporting to Batch'],
  [50003, 'its VM rebooted'],
  [50004, 'its VM and the task stopped responding'],
  [50006, 'its VM was recreated'],
]);

export const PREEMPTED = 50001;
export const MAX_RUN_DURATION = 50005;

