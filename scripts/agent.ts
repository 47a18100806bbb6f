// make agent: the supervisor as a long-lived process over this state folder's runs. It carries
// every run asked for (make train, detach=1 or not) that no shell follows, to its end: re-attach,
// pull, resubmit (down the run's backends when one stops answering), merge. One agent per state
// folder. SIGTERM or Ctrl-C ends it and leaves every attempt running; the next agent re-attaches.
import { Agent } from './lib/agent/agent.js';
import { openProject } from './lib/project.js';
import { readVars } from './lib/spec/make-vars.js';
import { runMain } from './lib/ui/errors.js';
import { z } from 'zod';

await runMain(async () => {
  const vars = readVars('agent', { tick_ms: z.coerce.number().int().min(50).max(60_000).optional() });
  const project = await openProject();
  const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(0, 19).replace('T', ' ')} ${line}\n`);
  const agent = new Agent(project, { say, tickMs: vars.tick_ms });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      say(`agent: ${sig}: leaving every attempt where it runs`);
      agent.stop();
    });
  }
  await agent.run();
  say('agent: stopped');
  return 0;
});
