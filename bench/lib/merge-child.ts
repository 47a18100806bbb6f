// The merging process of bench/merge.ts and bench/scale-merge.ts: one mergeShards, then its time and peak RSS as
// JSON. Bundled with esbuild like the verbs are, and run in plain node, so its RSS is the
// product's and not a TypeScript loader's. Arguments: <out> <shard>...
import { mergeShards } from '../../scripts/lib/merge/index.js';

const [out, ...files] = process.argv.slice(2);
const t0 = performance.now();
const report = await mergeShards(files, 'concat', out!);
const ms = performance.now() - t0;
const { heapTotal, external } = process.memoryUsage();
process.stdout.write(JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS, heapTotal, external, records: report.merged.records }) + '\n');
