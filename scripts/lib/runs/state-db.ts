// Run state in SQLite: a fast index over the store's run.json files, rebuilt by `make reindex`.
// Records are kept in run.json's own format, so an index written by any version reads back.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { diskError } from '../ui/errors.js';
import { lastStep, parseRunJson, runJson, runState, summarize, type RunRecord, type RunSummary } from './run-record.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  experiment TEXT NOT NULL,
  digest TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_step INTEGER,
  record TEXT NOT NULL
);
-- Newest first within a digest, the state beside: the newest run with some pins in a state is
-- found in the index alone, and only its record is read (a sort would read every such record).
CREATE INDEX IF NOT EXISTS runs_by_digest_time ON runs(digest, created_at, run_id, state);
-- Apart from runs: a row there holds its whole record, which SQLite reads through to reach a
-- column after it, so a listing from runs would read every record even to skip it.
CREATE TABLE IF NOT EXISTS summaries (
  run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
  experiment TEXT NOT NULL,
  created_at TEXT NOT NULL,
  summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS summaries_by_time ON summaries(created_at, run_id);
CREATE INDEX IF NOT EXISTS summaries_by_experiment ON summaries(experiment, created_at, run_id);
CREATE TABLE IF NOT EXISTS attempts (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  unit INTEGER NOT NULL,
  n INTEGER NOT NULL,
  backend TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  exit_code INTEGER,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  last_step INTEGER,
  handle TEXT,
  PRIMARY KEY (run_id, unit, n)
);
`;

/**
 * 1: attempts per unit, with their handles (before: one table of a run's attempts, one of handles).
 * 2: each run's summary in a table of its own, for listing without reading records.
 * 3: summaries name the hosts a run's units are placed on.
 * 4: runs by digest in time order, with their state (before: by digest alone).
 */
const VERSION = 4;

/**
 * The compiled SQLite binding where npm builds it, named outright: left to find it, better-sqlite3
 * asks the `bindings` package, which tries a dozen paths (~2.5 ms of every verb's start). Elsewhere
 * (a debug build, a prebuilt binary in another place) the package looks for it as before.
 */
function sqliteBinding(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
  } catch {
    return undefined;
  }
}

/**
 * Turns a db to WAL (kept in the file: a no-op once done). Two verbs opening a new db at the same
 * moment race for it, and SQLite answers the loser SQLITE_BUSY at once, without waiting out
 * busy_timeout: it tries again for up to 5 s.
 */
function setWal(db: Database.Database): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let tries = 0; ; tries++) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || tries >= 100) throw err;
      Atomics.wait(pause, 0, 0, 50); // a synchronous 50 ms pause: the constructor is synchronous
    }
  }
}

export class StateDb {
  private db!: Database.Database;
  /** summaries by their JSON text, once keepSummariesParsed asked for it: shared, never changed */
  private parsedSummaries: Map<string, RunSummary> | null = null;

  constructor(private readonly file: string) {
    this.writing(() => {
      mkdirSync(path.dirname(file), { recursive: true });
      this.db = new Database(file, { nativeBinding: sqliteBinding() });
      this.db.pragma('busy_timeout = 5000'); // first: two verbs may open a new db at the same moment
      setWal(this.db);
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    });
  }

  /** A full disk (SQLite says SQLITE_FULL) is one line naming the db. */
  private writing<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw diskError(`state db ${path.relative(process.cwd(), this.file)}`, path.dirname(this.file), err) ?? err;
    }
  }

  private migrate(): void {
    const version = () => this.db.pragma('user_version', { simple: true }) as number;
    if (version() >= VERSION) return;
    // IMMEDIATE: takes the write lock first (waiting out another process's), where a deferred
    // transaction that reads then writes fails at once with "database is locked".
    this.db.transaction(() => {
      if (version() >= VERSION) return; // another process migrated it while this one waited
      this.db.exec('DROP TABLE IF EXISTS handles; DROP TABLE IF EXISTS attempts; DROP TABLE IF EXISTS summaries; DROP INDEX IF EXISTS runs_by_digest;');
      this.db.exec(SCHEMA);
      // The attempts and summaries derive from the records: fill them again.
      for (const { record } of this.db.prepare('SELECT record FROM runs').all() as { record: string }[]) this.writeDerived(parseRunJson(record));
      this.db.pragma(`user_version = ${VERSION}`);
    }).immediate();
  }

  /** The rows that follow from a record: its attempts and its summary. */
  private writeDerived(r: RunRecord): void {
    this.db.prepare('INSERT INTO summaries (run_id, experiment, created_at, summary) VALUES (?, ?, ?, ?)').run(r.run_id, r.experiment, r.created_at, JSON.stringify(summarize(r)));
    const insert = this.db.prepare(
      `INSERT INTO attempts (run_id, unit, n, backend, state, reason, exit_code, started_at, ended_at, last_step, handle)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const u of r.units) {
      for (const a of u.attempts) {
        insert.run(r.run_id, u.index, a.n, a.backend, a.state, a.reason, a.exit_code, a.started_at, a.ended_at, a.last_step, a.handle ? JSON.stringify(a.handle) : null);
      }
    }
  }

  /** Mirrors one run.json into the tables; `json` is the record as runJson wrote it, when the caller has it. */
  upsert(run: RunRecord, json = runJson(run)): void {
    const write = this.db.transaction((r: RunRecord) => {
      this.db.prepare('DELETE FROM runs WHERE run_id = ?').run(r.run_id);
      this.db
        .prepare(
          `INSERT INTO runs (run_id, experiment, digest, state, created_at, updated_at, last_step, record)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(r.run_id, r.experiment, r.pins.digest, runState(r), r.created_at, new Date().toISOString(), lastStep(r), json);
      this.writeDerived(r);
    });
    this.writing(() => write(run));
  }

  /** Drops a run's rows (its attempts and summary go with it). */
  remove(runId: string): void {
    this.db.prepare('DELETE FROM runs WHERE run_id = ?').run(runId);
  }

  /** Whether the index holds the run: no record read, for a run id being chosen. */
  has(runId: string): boolean {
    return this.db.prepare('SELECT 1 FROM runs WHERE run_id = ?').get(runId) !== undefined;
  }

  get(runId: string): RunRecord | null {
    const row = this.db.prepare('SELECT record FROM runs WHERE run_id = ?').get(runId) as { record: string } | undefined;
    return row ? parseRunJson(row.record) : null;
  }

  /**
   * The newest run with these pins that has succeeded, and the newest that has not: found in
   * the index (runs_by_digest_time), two records read and parsed, however many runs share the
   * pins (each `again=1` adds one).
   */
  newestByDigest(digest: string): { finished: RunRecord | null; unfinished: RunRecord | null } {
    const newest = (sql: string) => {
      const row = this.db.prepare(`SELECT record FROM runs WHERE digest = ? AND ${sql} ORDER BY created_at DESC, run_id DESC LIMIT 1`).get(digest) as { record: string } | undefined;
      return row ? parseRunJson(row.record) : null;
    };
    return { finished: newest("state = 'succeeded'"), unfinished: newest("state <> 'succeeded'") };
  }

  hasDigest(digest: string): boolean {
    return this.db.prepare('SELECT 1 FROM runs WHERE digest = ? LIMIT 1').get(digest) !== undefined;
  }

  /** Newest first; optionally only one experiment's runs. */
  list(experiment?: string): RunRecord[] {
    const rows = (
      experiment
        ? this.db.prepare('SELECT record FROM runs WHERE experiment = ? ORDER BY created_at DESC, run_id DESC').all(experiment)
        : this.db.prepare('SELECT record FROM runs ORDER BY created_at DESC, run_id DESC').all()
    ) as { record: string }[];
    return rows.map((r) => parseRunJson(r.record));
  }

  /**
   * For a process that lists runs again and again (the dashboard): reading the rows is cheap,
   * parsing thousands of them is most of a listing, so summaries are kept parsed by their text
   * and a listing parses only the records that changed. A verb that lists once gains nothing:
   * the kept texts cost it more in garbage collection than the parsing they would save.
   */
  keepSummariesParsed(): void {
    this.parsedSummaries ??= new Map();
  }

  /** Every run's summary (or one experiment's), newest first, as `list` orders the records. */
  summaries(experiment?: string): RunSummary[] {
    const texts = (
      experiment
        ? this.db.prepare('SELECT summary FROM summaries WHERE experiment = ? ORDER BY created_at DESC, run_id DESC').pluck().all(experiment)
        : this.db.prepare('SELECT summary FROM summaries ORDER BY created_at DESC, run_id DESC').pluck().all()
    ) as string[];
    const known = this.parsedSummaries;
    if (!known) return texts.map((text) => JSON.parse(text) as RunSummary);
    const list = texts.map((text) => {
      let summary = known.get(text);
      if (!summary) known.set(text, (summary = JSON.parse(text) as RunSummary));
      return summary;
    });
    // Texts of records since rewritten or removed go once they outnumber the current ones.
    if (known.size > 2 * texts.length + 1000) this.parsedSummaries = new Map(texts.map((t, i) => [t, list[i]!]));
    return list;
  }

  /** Replaces every row with the given runs, in one transaction. */
  replaceAll(runs: RunRecord[]): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM attempts; DELETE FROM summaries; DELETE FROM runs;');
      for (const r of runs) this.upsert(r);
    })();
  }

  close(): void {
    this.db.close();
  }
}
