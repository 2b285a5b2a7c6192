// The smallest program: a u64 counter that survives the process. Run it twice:
//   node dist/examples/counter.js [POOL]        (default data/counter.pool)
import fs from 'node:fs';
import path from 'node:path';
import { createPool, openPool } from 'region-system';

const poolPath = process.argv[2] ?? path.join('data', 'counter.pool');
fs.mkdirSync(path.dirname(poolPath), { recursive: true });
const pool = fs.existsSync(poolPath) ? openPool(poolPath) : createPool(poolPath, { size: '1MiB' });
try {
  if (!pool.list().some((r) => r.name === 'counter')) pool.create('counter', { size: 4096 });
  const m = pool.open('counter').map();
  const counter = new BigUint64Array(m.buffer);
  counter[0] = (counter[0] ?? 0n) + 1n; // an ordinary store into persistent memory
  const sync = m.pmsync(); // durable and atomic from here on
  console.log(`counter = ${counter[0]} (pmsync: ${sync.pages} page, ${sync.linesFlushed} lines flushed, ${sync.fences} fences)`);
} finally {
  pool.close();
}
