// RegionLevel against classic-level (LevelDB), in the same run, through the same abstract-level
// API: `npm run bench:level` (or node dist/bench/level.js [--quick]).
//
//   put        one put per commit, durable: { sync: true } for classic-level (RegionLevel is
//              always durable when a write settles)
//   batch10    batches of 10 puts, durable; batch100 batches of 100
//   get        random gets of the 10,000 keys written before
//   iterate    one iterator over the 10,000 entries (for await)
//
// Keys are 16 bytes, values 100 bytes. RegionLevel's pool is on tmpfs (emulated PM);
// classic-level runs on tmpfs and on an ordinary file system. Rounds interleave the systems
// (A B C, A B C, ...) with a fresh database each; the figure is the median over rounds of
// each round's rate, with the min-max. classic-level is a peer installed by
// bench/install-peers.sh, never a dependency: without it the run says so and stops.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegionLevel } from 'region-system/level';
import { PEERS_COMMAND, requirePeer } from './peer_modules.js';
import { spreadOf, type Spread } from './stats.js';

interface Db {
  open(): Promise<void>;
  close(): Promise<void>;
  put(key: string, value: string, options?: object): Promise<void>;
  get(key: string): Promise<string | undefined>;
  batch(ops: { type: 'put'; key: string; value: string }[], options?: object): Promise<void>;
  iterator(): AsyncIterable<[string, string]>;
}

interface System {
  name: string;
  /** A fresh database named `name`, and the file or directory that holds it. */
  make(name: string): { db: Db; store: string };
}

const WORKLOADS = ['put', 'batch10', 'batch100', 'get', 'iterate'] as const;
type Workload = (typeof WORKLOADS)[number];
const ENTRIES = 10_000;
const VALUE = 'v'.repeat(100);
const DURABLE = { sync: true };
const TMPFS_MAGIC = 0x01021994;

function key(i: number): string {
  return `key-${String(i).padStart(12, '0')}`; // 16 bytes
}

/** Units (puts, gets or entries) per second of one workload on a fresh, open db. */
async function measure(db: Db, workload: Workload, quick: boolean): Promise<number> {
  const writes = quick ? 300 : 2000;
  const started = performance.now();
  let units = 0;
  if (workload === 'put') {
    for (; units < writes; units++) await db.put(key(units), VALUE, DURABLE);
  } else if (workload === 'batch10' || workload === 'batch100') {
    const size = workload === 'batch10' ? 10 : 100;
    for (; units < writes * (size / 10); units += size) {
      await db.batch(puts(units, size), DURABLE);
    }
  } else if (workload === 'get') {
    let x = 12345;
    for (; units < ENTRIES; units++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      if ((await db.get(key(x % ENTRIES))) === undefined) throw new Error('a get missed');
    }
  } else {
    for await (const entry of db.iterator()) if (entry[1].length === VALUE.length) units++;
    if (units !== ENTRIES) throw new Error(`the iterator gave ${units} entries of ${ENTRIES}`);
  }
  return units / ((performance.now() - started) / 1000);
}

function puts(first: number, count: number): { type: 'put'; key: string; value: string }[] {
  return Array.from({ length: count }, (_, i) => ({ type: 'put' as const, key: key(first + i), value: VALUE }));
}

async function fill(db: Db): Promise<void> {
  for (let i = 0; i < ENTRIES; i += 1000) {
    await db.batch(puts(i, 1000));
  }
}

function systems(tmpfs: string, disk: string | undefined): System[] {
  let ClassicLevel: new (location: string) => Db;
  try {
    ({ ClassicLevel } = requirePeer('classic-level') as { ClassicLevel: new (location: string) => Db });
  } catch {
    throw new Error(`classic-level is not installed: run ${PEERS_COMMAND} first`);
  }
  const regionLevel = (name: string): { db: Db; store: string } => {
    const store = path.join(tmpfs, `${name}.pool`);
    return { db: new RegionLevel(store, { region: 'bench', mode: 'exclusive', poolSize: '64MiB' }) as Db, store };
  };
  const classic = (base: string) => (name: string): { db: Db; store: string } => {
    const store = path.join(base, name);
    return { db: new ClassicLevel(store), store };
  };
  const list: System[] = [
    { name: 'RegionLevel (tmpfs)', make: regionLevel },
    { name: 'classic-level (tmpfs)', make: classic(tmpfs) },
  ];
  if (disk !== undefined) list.push({ name: 'classic-level (disk)', make: classic(disk) });
  return list;
}

async function main(quick: boolean): Promise<void> {
  process.env['REGIONS_QUIET'] = '1';
  const tmpfs = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-bench-level-'));
  const diskBase = process.env['REGIONS_BENCH_DISK_DIR'] ?? os.tmpdir();
  const onTmpfs = fs.statfsSync(diskBase).type === TMPFS_MAGIC;
  const disk = onTmpfs ? undefined : fs.mkdtempSync(path.join(diskBase, 'regions-bench-level-'));
  const rounds = quick ? 2 : 5;
  const rates = new Map<string, number[]>();
  try {
    const list = systems(tmpfs, disk);
    for (let round = 0; round < rounds; round++) {
      for (const system of list) {
        for (const workload of WORKLOADS) {
          const { db, store } = system.make(`r${round}-${workload}`);
          await db.open();
          if (workload === 'get' || workload === 'iterate') await fill(db);
          const rate = await measure(db, workload, quick);
          await db.close();
          fs.rmSync(store, { recursive: true, force: true });
          const key = `${system.name}|${workload}`;
          rates.set(key, [...(rates.get(key) ?? []), rate]);
        }
      }
    }
    report(list.map((s) => s.name), rates, rounds);
  } finally {
    for (const dir of [tmpfs, disk]) if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function report(names: string[], rates: Map<string, number[]>, rounds: number): void {
  const n = (x: number): string => Math.round(x).toLocaleString('en');
  const fmt = (s: Spread): string => `${n(s.median)} (${n(s.min)}–${n(s.max)})`;
  const head = `| per second, median of ${rounds} rounds (min–max) | ${names.join(' | ')} | RegionLevel ÷ peer |`;
  const lines = [head,
    `|---|${names.map(() => '---:').join('|')}|---|`];
  for (const workload of WORKLOADS) {
    const spreads = names.map((name) => spreadOf(rates.get(`${name}|${workload}`) ?? []));
    const ours = spreads[0]?.median ?? 0;
    const ratio = (s: Spread, i: number): string => `${(ours / s.median).toFixed(2)}× vs ${names[i + 1]}`;
    const ratios = spreads.slice(1).map(ratio);
    lines.push(`| ${workload} | ${spreads.map(fmt).join(' | ')} | ${ratios.join(', ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.includes('--quick'));
