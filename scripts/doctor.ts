// make doctor [host=<name>]: every dependency and remote in one table, ✓ or ✗ with the exact
// fix; exits 1 when something needed is broken (scripts/lib/doctor/).
import { findRoot } from './lib/config/load-config.js';
import { runDoctor } from './lib/doctor/doctor.js';
import { runMain } from './lib/ui/errors.js';

await runMain(async () => {
  const failed = await runDoctor(findRoot(), { host: process.env.host || undefined }, (text) => process.stdout.write(text));
  return failed ? 1 : 0;
});
