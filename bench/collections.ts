// The collections workload: PMap (exclusive mode, pool on tmpfs) against lmdb-js (tmpfs,
// durable: transactionSync with overlappingSync off) in the same run, on the same keys and
// values. Durable puts per second at 1, 10 and 100 puts per commit with 100-byte and 4 KiB
// values (random overwrites of 10,000 keys), random gets per second, range scans of 1,000
// keys, and bytes written per user byte (PMap: lines flushed x 64 from its pmsyncs; lmdb-js:
// its write-syscall bytes). Prints one table with the ratios.
//
//   node dist/bench/collections.js [--quick]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPool, PMap } from '../src/index.js';
import { HeapRegion } from '../src/collections/heap_region.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { PEERS_COMMAND, requirePeer } from './peer_modules.js';
import { writeSyscallBytes } from './workload.js';

interface Store {
  name: string;
  commit(puts: [string, Uint8Array][]): void;
  get(key: string): Uint8Array | undefined;
  scan(start: string, count: number): number;
  /** Bytes written to the medium so far. */
  written(): number;
  close(): Promise<void> | void;
}

interface LmdbDatabase {
  putSync(key: string, value: Uint8Array): void;
  get(key: string): Uint8Array | undefined;
  transactionSync<T>(action: () => T): T;
  getRange(options: { start: string; limit: number }): Iterable<{ key: string; value: Uint8Array }>;
  close(): Promise<void>;
}

type Put = [string, Uint8Array];

const KEYS = 10_000;
const quick = process.argv.includes('--quick');
const SECONDS = quick ? 0.3 : 1.5;
const keyOf = (i: number): string => `key-${String(i).padStart(6, '0')}`;

let pmapWritten = 0;
const pmsync = HeapRegion.prototype.pmsync;
HeapRegion.prototype.pmsync = function counted(this: HeapRegion) {
  const stats = pmsync.call(this);
  pmapWritten += stats.linesFlushed * 64;
  return stats;
};

function pmapStore(dir: string): Store {
  const pool = createPool(path.join(dir, 'bench.pool'), { size: '2GiB', mode: 'exclusive' });
  const map = PMap.open<Uint8Array>(pool, 'bench', { create: true, encoding: 'binary', size: '256MiB' });
  return {
    name: 'PMap',
    commit: (puts) => {
      const [first] = puts;
      if (puts.length === 1 && first !== undefined) map.put(first[0], first[1]); // one pmsync, no batch
      else map.batch(() => puts.forEach(([k, v]) => map.put(k, v)));
    },
    get: (key) => map.get(key),
    scan: (start, count) => {
      let n = 0;
      for (const entry of map.range({ start, limit: count })) n += entry[1].length > 0 ? 1 : 0;
      return n;
    },
    written: () => pmapWritten,
    close: () => {
      map.close();
      pool.close();
    },
  };
}

async function lmdbStore(dir: string): Promise<Store> {
  let lmdb: { open(options: Record<string, unknown>): LmdbDatabase };
  try {
    lmdb = requirePeer('lmdb') as typeof lmdb;
  } catch {
    throw new Error(`lmdb-js is not installed: run ${PEERS_COMMAND} first`);
  }
  const db = lmdb.open({
    path: path.join(dir, 'lmdb'),
    compression: false,
    encoding: 'binary',
    noSync: false,
    overlappingSync: false, // transactionSync returns after the fsync: durable
    mapSize: 2 ** 31,
  });
  return {
    name: 'lmdb-js',
    commit: (puts) => db.transactionSync(() => puts.forEach(([k, v]) => db.putSync(k, v))),
    get: (key) => db.get(key),
    scan: (start, count) => {
      let n = 0;
      for (const entry of db.getRange({ start, limit: count })) n += entry.value.length > 0 ? 1 : 0;
      return n;
    },
    written: () => writeSyscallBytes(),
    close: () => db.close(),
  };
}

/** Runs `op` for SECONDS (at least 20 times); returns operations per second. */
function rate(op: () => number): number {
  const start = process.hrtime.bigint();
  let done = 0;
  let runs = 0;
  for (; runs < 20 || Number(process.hrtime.bigint() - start) < SECONDS * 1e9; runs++) done += op();
  return done / (Number(process.hrtime.bigint() - start) / 1e9);
}

function measure(store: Store, prng: SimPrng): Map<string, number> {
  const results = new Map<string, number>();
  const fill = new Uint8Array(100).fill(1);
  for (let i = 0; i < KEYS; i += 1000) store.commit(Array.from({ length: 1000 }, (_, j) => [keyOf(i + j), fill]));
  for (const valueBytes of [100, 4096]) {
    const value = new Uint8Array(valueBytes).fill(7);
    for (const perCommit of [1, 10, 100]) {
      const before = store.written();
      let user = 0;
      results.set(`durable puts/s, ${perCommit} per commit, ${valueBytes} B`, rate(() => {
        const puts = Array.from({ length: perCommit }, (): Put => [keyOf(prng.nextBelow(KEYS)), value]);
        store.commit(puts);
        user += perCommit * (valueBytes + 10);
        return perCommit;
      }));
      const label = `bytes written per user byte, ${perCommit} per commit, ${valueBytes} B`;
      results.set(label, (store.written() - before) / user);
    }
  }
  results.set('random gets/s', rate(() => (store.get(keyOf(prng.nextBelow(KEYS))) === undefined ? 0 : 1)));
  const scan = (): number => (store.scan(keyOf(prng.nextBelow(KEYS - 1000)), 1000) === 1000 ? 1 : 0);
  results.set('range scans of 1,000 keys/s', rate(scan));
  return results;
}

async function main(): Promise<void> {
  const scratch = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const base = fs.mkdtempSync(path.join(scratch, 'regions-bench-collections-'));
  process.env['REGIONS_QUIET'] = '1';
  try {
    const pmap = pmapStore(base);
    const pmapResults = measure(pmap, new SimPrng(1));
    await pmap.close();
    const lmdb = await lmdbStore(base);
    const lmdbResults = measure(lmdb, new SimPrng(1));
    await lmdb.close();
    console.log(`| workload | PMap | lmdb-js | PMap / lmdb-js |\n|---|---:|---:|---:|`);
    for (const [name, value] of pmapResults) {
      const other = lmdbResults.get(name) ?? NaN;
      const digits = name.startsWith('bytes') ? 2 : 0;
      console.log(`| ${name} | ${value.toFixed(digits)} | ${other.toFixed(digits)} | ${(value / other).toFixed(2)} |`);
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
