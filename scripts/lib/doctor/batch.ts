// Google Cloud Batch, when entries are configured: the checks of `make gcp-setup`
// (credentials, project, APIs, permissions), each one row.
import type { Config } from '../config/load-config.js';
import { gcpSetup, type SetupCheck } from '../batch/setup-checks.js';
import { splitFix, type Check, type Finding } from './row.js';

const TIMEOUT_MS = 30_000;

/** One gcp-setup line as a row: `credentials: …`, `project p: …`, `Batch API (batch.googleapis.com) … in p`. */
export function setupFinding(check: SetupCheck): Finding {
  const { detail, fix } = splitFix(check.line);
  const api = /^(.+?) \(([a-z]+\.googleapis\.com)\) (.*)$/.exec(detail);
  const colon = detail.indexOf(': ');
  const [name, what] = api ? [api[1]!, `${api[2]} ${api[3]}`] : colon > 0 ? [detail.slice(0, colon), detail.slice(colon + 2)] : ['check', detail];
  return check.ok ? { name, ok: true, detail: what } : { name, ok: false, detail: what, fix: fix || 'make gcp-setup says more' };
}

export function batchCheck(root: string, config: Config): Check {
  return {
    group: 'batch',
    name: 'credentials',
    required: true,
    timeoutMs: TIMEOUT_MS,
    run: async () => {
      const found: Finding[] = [];
      await gcpSetup({ root, config, say: (c) => found.push(setupFinding(c)) });
      return found;
    },
  };
}
