// A log shared live between processes (needs shared mode: regiond maps one working copy into
// every process). Writers append length-prefixed records under a RegionLock and pmsync each
// one; readers map the region read-only and print records as they are published, sleeping on
// a futex word of the region between them.
//
//   node dist/examples/shared-log.js writer POOL [MESSAGE...]   (no MESSAGE: one per stdin line)
//   node dist/examples/shared-log.js reader POOL [COUNT]        prints records as they come;
//                                                               exits after COUNT records
// Region "log" layout (little-endian u32 words):
//   word 0, 1   the RegionLock
//   word 2      records published: readers wait on it (futex); stored last, after the record
//   word 3      end of the last record (byte offset in the region)
//   4096 ...    records: u32 length, then the bytes, padded to 4 bytes

import fs from 'node:fs';
import readline from 'node:readline';
import { createPool, isRegionError, openPool, RegionError, RegionLock, type MappingApi, type Pool } from 'region-system';

const REGION = 'log';
const REGION_BYTES = 1 << 20;
const LOCK_WORD = 0;
const COUNT_WORD = 2;
const END_WORD = 3;
const RECORDS_START = 4096;
const READER_SLICE_MS = 1000;

function openShared(poolPath: string): Pool {
  if (!fs.existsSync(poolPath)) createPool(poolPath, { size: '8MiB', mode: 'exclusive' }).close();
  try {
    return openPool(poolPath, { mode: 'shared' });
  } catch (error) {
    if (isRegionError(error, 'UNSUPPORTED')) throw new RegionError('UNSUPPORTED', `shared-log needs shared mode (regiond), which this build lacks: ${error.message}`);
    throw error;
  }
}

function ensureRegion(pool: Pool): void {
  try {
    pool.create(REGION, { size: REGION_BYTES });
  } catch (error) {
    if (!isRegionError(error, 'EXISTS')) throw error; // another process created it first
  }
}

/** The end of record `count`, found by walking: repairs word 3 after a writer died mid-append. */
function endOf(view: DataView, count: number): number {
  let end = RECORDS_START;
  for (let i = 0; i < count; i++) end += 4 + align4(view.getUint32(end, true));
  return end;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function append(m: MappingApi, lock: RegionLock, message: string): number {
  const words = new Int32Array(m.shared);
  const view = new DataView(m.buffer);
  const bytes = new TextEncoder().encode(message);
  return lock.withLock((state) => {
    const count = Atomics.load(words, COUNT_WORD);
    // A writer that died between storing the end and publishing the count leaves word 3 ahead.
    const end = state === 'owner-died' ? endOf(view, count) : Atomics.load(words, END_WORD) || RECORDS_START;
    if (end + 4 + align4(bytes.length) > m.length) throw new RegionError('NO_SPACE', `the log is full (${m.length} bytes)`);
    view.setUint32(end, bytes.length, true);
    new Uint8Array(m.buffer, end + 4, bytes.length).set(bytes);
    Atomics.store(words, END_WORD, end + 4 + align4(bytes.length));
    Atomics.store(words, COUNT_WORD, count + 1); // publish: readers may read the record now
    m.pmsync(); // under the lock: the snapshot holds whole records and a matching count
    m.notify(COUNT_WORD);
    return count + 1;
  });
}

async function writer(poolPath: string, messages: string[]): Promise<void> {
  const pool = openShared(poolPath);
  try {
    ensureRegion(pool);
    const m = pool.open(REGION).map();
    const lock = new RegionLock(m, LOCK_WORD);
    const lines = messages.length > 0 ? messages : readline.createInterface({ input: process.stdin });
    for await (const message of lines) console.log(`appended ${append(m, lock, message)}`);
  } finally {
    pool.close();
  }
}

function reader(poolPath: string, limit: number): void {
  const pool = openShared(poolPath);
  try {
    ensureRegion(pool);
    const m = pool.open(REGION, { access: 'ro' }).map();
    const words = new Int32Array(m.shared);
    const view = new DataView(m.buffer);
    let at = RECORDS_START;
    for (let seen = 0; seen < limit; ) {
      const count = Atomics.load(words, COUNT_WORD);
      for (; seen < count && seen < limit; seen++) {
        const length = view.getUint32(at, true);
        console.log(new TextDecoder().decode(new Uint8Array(m.buffer, at + 4, length)));
        at += 4 + align4(length);
      }
      if (seen < limit) m.wait(COUNT_WORD, count, READER_SLICE_MS); // woken by a writer's notify
    }
  } finally {
    pool.close();
  }
}

async function main(args: string[]): Promise<number> {
  const [role, poolPath, ...rest] = args;
  if (role === 'writer' && poolPath !== undefined) await writer(poolPath, rest);
  else if (role === 'reader' && poolPath !== undefined) reader(poolPath, rest[0] === undefined ? Infinity : Number(rest[0]));
  else {
    console.error('usage: shared-log.js writer POOL [MESSAGE...] | reader POOL [COUNT]');
    return 2;
  }
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`shared-log: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
