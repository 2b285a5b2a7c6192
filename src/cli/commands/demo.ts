// `regions demo`: the smallest honest end-to-end run. It keeps a u64 counter at offset 0 of
// region "counter" in DIR/demo.pool, adds 1 with one atomic region.write, closes the pool,
// reopens it and checks that the new value persisted. Run it twice: the counter goes up.

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { SyncStats } from '../../api.js';
import { RegionError } from '../../errors.js';
import type { Pool } from '../../api.js';
import { createPool, openPool } from '../../pool.js';
import { act, globalsOf } from '../context.js';
import { emit, formatNs, table } from '../output.js';

const DEMO_DIR_DEFAULT = 'data';
const DEMO_POOL_FILE = 'demo.pool';
const DEMO_POOL_SIZE = '4MiB';
const COUNTER_REGION = 'counter';
const COUNTER_REGION_SIZE = '64KiB';
const COUNTER_BYTES = 8;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('increment a persistent counter in DIR/demo.pool and verify it after reopening')
    .option('--dir <dir>', 'directory for demo.pool', DEMO_DIR_DEFAULT)
    .option('--json', 'print one JSON document')
    .action(act(demo));
}

function demo(cmd: Command): void {
  const globals = globalsOf(cmd);
  const poolPath = path.join(cmd.opts<{ dir: string }>().dir, DEMO_POOL_FILE);
  const { counter, sync } = increment(poolPath, globals.poolMode);
  const reopened = openPool(poolPath, { mode: globals.poolMode });
  const persisted = usePool(reopened, (pool) => readCounter(pool));
  if (persisted !== counter) {
    throw new RegionError('CORRUPT', `demo: counter in ${poolPath} is ${persisted} after reopening, expected ${counter}: the write did not persist`);
  }
  const result = { pool: path.resolve(poolPath), counter: Number(counter), sync, verified: true };
  emit(globals, result, () => table([
    ['pool', result.pool],
    ['counter', String(counter)],
    ['pmsync pages', String(sync.pages)],
    ['linesFlushed', String(sync.linesFlushed)],
    ['fences', String(sync.fences)],
    ['time', formatNs(sync.ns)],
    ['verified', 'yes'],
  ]));
}

/** Opens (or creates) the demo pool and region, adds 1 to the counter in one commit. */
function increment(poolPath: string, mode: 'auto' | 'exclusive' | 'shared'): { counter: bigint; sync: SyncStats } {
  fs.mkdirSync(path.dirname(poolPath), { recursive: true });
  const pool = fs.existsSync(poolPath) ? openPool(poolPath, { mode }) : createPool(poolPath, { size: DEMO_POOL_SIZE });
  return usePool(pool, (p) => {
    if (!p.list().some((r) => r.name === COUNTER_REGION)) p.create(COUNTER_REGION, { size: COUNTER_REGION_SIZE });
    const counter = readCounter(p) + 1n;
    const bytes = new Uint8Array(COUNTER_BYTES);
    new DataView(bytes.buffer).setBigUint64(0, counter, true);
    return { counter, sync: p.open(COUNTER_REGION).write(0, bytes) }; // the commit
  });
}

function readCounter(pool: Pool): bigint {
  const bytes = pool.open(COUNTER_REGION, { access: 'ro' }).read(0, COUNTER_BYTES);
  return new DataView(bytes.buffer, bytes.byteOffset, COUNTER_BYTES).getBigUint64(0, true);
}

function usePool<T>(pool: Pool, use: (pool: Pool) => T): T {
  try {
    return use(pool);
  } finally {
    pool.close();
  }
}
