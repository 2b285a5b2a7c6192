// lmdb-js trials: one transactionSync per op putting the op's units as binary values under
// uint32 keys. 'sync' turns overlappingSync off, so transactionSync returns only after LMDB's
// fsync (durable); 'noSync' skips the fsync (atomic, not durable). Bytes written are the
// process's write-syscall bytes (/proc/self/io wchar): LMDB writes dirty pages with pwrite.

import fs from 'node:fs';
import { PEERS_COMMAND, requirePeer } from '../peer_modules.js';
import { systemNamed } from '../systems.js';
import { fillUnit, numberParam, patternParam, runOps, type TrialResult, type TrialSpec, UnitChooser, writeSyscallBytes } from '../workload.js';

interface LmdbDatabase {
  putSync(key: number, value: Uint8Array): void;
  transactionSync<T>(action: () => T): T;
  getKeysCount(): number;
  close(): Promise<void>;
}
interface LmdbModule {
  open(options: Record<string, unknown>): LmdbDatabase;
}

/** Values put per transaction while the database is filled at set-up. */
const FILL_BATCH_UNITS = 4096;

export async function runLmdbUnits(spec: TrialSpec): Promise<TrialResult> {
  const options = systemNamed(spec.system).lmdb;
  if (options === undefined) throw new Error(`${spec.system} is not an lmdb-js variant`);
  let lmdb: LmdbModule;
  try {
    lmdb = requirePeer('lmdb') as LmdbModule;
  } catch (error) {
    return { skipped: `lmdb-js is not installed (${PEERS_COMMAND}; ${(error as Error).message.split('\n')[0]})` };
  }
  const dataBytes = numberParam(spec, 'dataBytes');
  const unitBytes = numberParam(spec, 'unitBytes');
  const count = numberParam(spec, 'count');
  const units = dataBytes / unitBytes;
  fs.mkdirSync(spec.file, { recursive: true });
  const db = lmdb.open({
    path: spec.file,
    compression: false,
    encoding: 'binary',
    keyEncoding: 'uint32',
    noSync: options.noSync,
    overlappingSync: false,
    mapSize: Math.max(2 * dataBytes, 256 << 20) * 4,
  });
  try {
    if (db.getKeysCount() < units) fill(db, units, unitBytes);
    const chooser = new UnitChooser(dataBytes, unitBytes, count, patternParam(spec), spec.seed);
    const value = new Uint8Array(unitBytes);
    let chosen = chooser.chosen;
    let writtenBefore = 0;
    const opNs = runOps(spec, {
      prepare: (op) => {
        chosen = chooser.next();
        fillUnit(value, 0, unitBytes, op, spec.stamp);
      },
      run: () =>
        db.transactionSync(() => {
          for (let j = 0; j < count; j++) db.putSync(chosen[j] ?? 0, value);
        }),
      reset: () => void (writtenBefore = writeSyscallBytes()),
    });
    const pmBytes = writeSyscallBytes() - writtenBefore;
    return { ops: opNs.length, opNs, pmBytes, pmBytesSource: 'write-syscall bytes (/proc/self/io wchar)', userBytesPerOp: count * unitBytes };
  } finally {
    await db.close();
  }
}

function fill(db: LmdbDatabase, units: number, unitBytes: number): void {
  const value = new Uint8Array(unitBytes).fill(0x5a);
  for (let first = 0; first < units; first += FILL_BATCH_UNITS) {
    db.transactionSync(() => {
      for (let key = first; key < Math.min(units, first + FILL_BATCH_UNITS); key++) db.putSync(key, value);
    });
  }
}
