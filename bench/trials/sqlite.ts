// SQLite trials (better-sqlite3 12): one transaction per op updating the op's units, each a
// row (id INTEGER PRIMARY KEY, data BLOB), journal_mode WAL, synchronous FULL or NORMAL.
// Bytes written are the process's write-syscall bytes (/proc/self/io wchar).

import { PEERS_COMMAND, requirePeer } from '../peer_modules.js';
import { systemNamed } from '../systems.js';
import { fillUnit, numberParam, patternParam, runOps, type TrialResult, type TrialSpec, UnitChooser, writeSyscallBytes } from '../workload.js';

interface Statement {
  run(...values: unknown[]): unknown;
  get(...values: unknown[]): Record<string, unknown> | undefined;
}
interface SqliteDatabase {
  pragma(text: string): unknown;
  exec(sql: string): void;
  prepare(sql: string): Statement;
  transaction(run: () => void): () => void;
  close(): void;
}
type SqliteConstructor = new (file: string) => SqliteDatabase;

/** Rows inserted per transaction while the table is filled at set-up. */
const FILL_BATCH_ROWS = 8192;

export function loadSqlite(): SqliteConstructor | string {
  try {
    return requirePeer('better-sqlite3') as SqliteConstructor;
  } catch (error) {
    const why = (error as Error).message.split('\n')[0];
    return `better-sqlite3 is not installed or did not build (${PEERS_COMMAND}; ${why})`;
  }
}

export function runSqliteUnits(spec: TrialSpec): TrialResult {
  const options = systemNamed(spec.system).sqlite;
  if (options === undefined) throw new Error(`${spec.system} is not a SQLite variant`);
  const Database = loadSqlite();
  if (typeof Database === 'string') return { skipped: Database };
  const dataBytes = numberParam(spec, 'dataBytes');
  const unitBytes = numberParam(spec, 'unitBytes');
  const count = numberParam(spec, 'count');
  const db = new Database(spec.file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous}`);
    fill(db, dataBytes / unitBytes, unitBytes);
    const update = db.prepare('UPDATE units SET data = ? WHERE id = ?');
    const chooser = new UnitChooser(dataBytes, unitBytes, count, patternParam(spec), spec.seed);
    const value = Buffer.alloc(unitBytes);
    let chosen = chooser.chosen;
    const commit = db.transaction(() => {
      for (let j = 0; j < count; j++) update.run(value, chosen[j] ?? 0);
    });
    let writtenBefore = 0;
    const opNs = runOps(spec, {
      prepare: (op) => {
        chosen = chooser.next();
        fillUnit(value, 0, unitBytes, op, spec.stamp);
      },
      run: () => commit(),
      reset: () => void (writtenBefore = writeSyscallBytes()),
    });
    const pmBytes = writeSyscallBytes() - writtenBefore;
    return { ops: opNs.length, opNs, pmBytes, pmBytesSource: 'write-syscall bytes (/proc/self/io wchar)', userBytesPerOp: count * unitBytes };
  } finally {
    db.close();
  }
}

function fill(db: SqliteDatabase, rows: number, unitBytes: number): void {
  db.exec('CREATE TABLE IF NOT EXISTS units (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  const have = Number(db.prepare('SELECT count(*) AS n FROM units').get()?.['n'] ?? 0);
  if (have >= rows) return;
  const insert = db.prepare('INSERT OR REPLACE INTO units (id, data) VALUES (?, ?)');
  const value = Buffer.alloc(unitBytes, 0x5a);
  for (let first = have; first < rows; first += FILL_BATCH_ROWS) {
    db.transaction(() => {
      for (let id = first; id < Math.min(rows, first + FILL_BATCH_ROWS); id++) insert.run(id, value);
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
}

export function sqliteVersion(): string | undefined {
  const Database = loadSqlite();
  if (typeof Database === 'string') return undefined;
  const db = new Database(':memory:');
  try {
    return String(db.prepare('SELECT sqlite_version() AS v').get()?.['v']);
  } finally {
    db.close();
  }
}
