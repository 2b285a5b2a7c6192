// Process crashes: a child stamps pages and pmsyncs in a loop; the parent logs every
// acknowledged pmsync and kills the child with SIGKILL at random moments (between stores and
// pmsync, mid-pmsync). After each kill the pool must open, pass fsck, and hold exactly the
// last acknowledged pmsync or the one in flight. REGIONS_KILLS sets the count (default 100).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPool, openPool } from '../src/index.js';
import { expectedEpoch, KILL_PAGES, readStamp } from './fixtures/kill-model.js';

process.env['REGIONS_QUIET'] = '1'; // the tmpfs notice is no news in a test's output
const here = path.dirname(fileURLToPath(import.meta.url));
const writer = path.join(here, 'fixtures', 'kill-writer.js');
const kills = Number(process.env.REGIONS_KILLS ?? 100);
const seed = Number(process.env.REGIONS_SEED ?? 1 + Math.floor(Math.random() * 1e6));

function runUntilKilled(poolPath: string, delayMs: number, tracking: string): Promise<{ acked: number; ready: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, poolPath, String(seed), tracking], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REGIONS_QUIET: '1' } });
    let acked = -1;
    let ready = -1;
    let buffered = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [word, value] = line.split(' ');
        if (word === 'ready') {
          ready = Number(value);
          acked = ready;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        } else if (word === 'synced') acked = Number(value);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' && ready >= 0) resolve({ acked, ready });
      else reject(new Error(`writer exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

function verify(poolPath: string, acked: number): { epoch: number } {
  const pool = openPool(poolPath, { mode: 'exclusive' });
  try {
    const report = pool.check();
    assert.ok(report.ok, `fsck after kill: ${JSON.stringify(report.problems)}`);
    const region = pool.open('stamps');
    const epoch = region.info().epoch;
    assert.ok(epoch === acked || epoch === acked + 1, `region epoch ${epoch}; last acknowledged ${acked}`);
    const bytes = region.read(0, KILL_PAGES * 4096);
    const memo = new Map<number, number[]>();
    for (let page = 0; page < KILL_PAGES; page++) {
      const stamp = readStamp(bytes, page);
      assert.equal(stamp, expectedEpoch(seed, page, epoch, memo), `page ${page} at region epoch ${epoch} (seed ${seed})`);
    }
    return { epoch };
  } finally {
    pool.close();
  }
}

for (const tracking of ['fault', 'scan']) {
  test(`SIGKILL during stores and pmsyncs (${tracking} tracking): every kill leaves the last acknowledged or in-flight pmsync`, async (t) => {
    t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed}); ${kills} kills`);
    const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-kill-'));
    const poolPath = path.join(dir, 'kill.pool');
    try {
      const pool = createPool(poolPath, { size: '8MiB', mode: 'exclusive' });
      pool.create('stamps', { size: KILL_PAGES * 4096 });
      pool.close();
      let inFlight = 0;
      const count = tracking === 'fault' ? kills : Math.ceil(kills / 4);
      for (let k = 0; k < count; k++) {
        const delay = 5 + ((seed + k * 7) % 40);
        const { acked } = await runUntilKilled(poolPath, delay, tracking);
        const { epoch } = verify(poolPath, acked);
        if (epoch === acked + 1) inFlight++;
      }
      t.diagnostic(`${count} kills; ${inFlight} recovered the in-flight pmsync`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
