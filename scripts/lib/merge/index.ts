// Shard reconciliation: check that a run's shard files are complete and consistent, then merge them.
export { compareKeys, parseShardFileName, readShardHeader, SHARD_FORMAT, shardFileName, shardKeyRange } from './header.js';
export type { ShardHeader, ShardKey } from './header.js';
export { mergeShards } from './merge.js';
export type { MergeReport, MergeStrategy } from './merge.js';
export { verifyCoverage } from './verify.js';
export type { CoverageExpectation, ShardReport } from './verify.js';
