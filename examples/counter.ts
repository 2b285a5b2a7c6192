// The smallest program: a u64 counter that survives the process. Run it twice:
//   node dist/examples/counter.js [POOL]        (default data/counter.pool)
import path from 'node:path';
import { openPool } from 'region-system';

const poolPath = process.argv[2] ?? path.join('data', 'counter.pool');
const pool = openPool(poolPath, { create: { size: '1MiB' } }); // the directory and the pool, if missing
try {
  const m = pool.open('counter', { create: { size: 4096 } }).map(); // the region, if missing
  const counter = new BigUint64Array(m.buffer);
  counter[0] = (counter[0] ?? 0n) + 1n; // an ordinary store into persistent memory
  const sync = m.pmsync(); // durable and atomic from here on
  console.log(`counter = ${counter[0]} (pmsync: ${sync.pages} page, ${sync.linesFlushed} lines flushed, ${sync.fences} fences)`);
} finally {
  pool.close();
}
