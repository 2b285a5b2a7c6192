// Atomicity across processes: four participants keep balances on different pages and move
// money between them under a lock built from wait/notify; pmsyncs come from random
// participants. Participants and regiond itself are SIGKILLed at random moments. After the
// participants are stopped, the region must equal exactly the last acknowledged pmsync or the
// one in flight, with the total intact, and fsck must be clean. REGIONS_SHARED_KILLS sets the
// number of kills (default 100).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPool, openPool, type Pool } from '../src/index.js';
import { ACCOUNTS, balanceWord, digest, PARTICIPANTS, REGION_BYTES, repair, START_BALANCE, total } from './fixtures/bank-model.js';

process.env['REGIONS_QUIET'] = '1'; // the tmpfs notice is no news in a test's output
const here = path.dirname(fileURLToPath(import.meta.url));
const participant = path.join(here, 'fixtures', 'bank-participant.js');
const kills = Number(process.env.REGIONS_SHARED_KILLS ?? 100);
const seed = Number(process.env.REGIONS_SEED ?? 1 + Math.floor(Math.random() * 1e6));

interface Running {
  child: ChildProcess;
  done: Promise<void>;
}

function start(poolPath: string, id: number, round: number, acked: Map<number, string>): Running {
  const child = spawn(process.execPath, [participant, poolPath, String(id), String(seed + round * 31 + id)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REGIONS_QUIET: '1' } });
  let buffered = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const [word, epoch, state] = line.split(' ');
      if (word === 'synced' && epoch && state) acked.set(Number(epoch), state);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL' || code === 3) resolve();
      else reject(new Error(`participant ${id} exited with ${code ?? signal}: ${stderr}`));
    });
  });
  return { child, done };
}

function serverPid(poolPath: string): number | undefined {
  const pool = openPool(poolPath);
  try {
    return pool.info().server?.pid;
  } finally {
    pool.close();
  }
}

function verify(poolPath: string, acked: Map<number, string>): 'acked' | 'in-flight' {
  const pool: Pool = openPool(poolPath);
  try {
    const report = pool.check();
    assert.ok(report.ok, `fsck: ${JSON.stringify(report.problems)}`);
    const region = pool.open('bank');
    const epoch = region.info().epoch;
    const last = Math.max(0, ...acked.keys());
    const words = new Int32Array(region.read(0, REGION_BYTES).buffer);
    repair(words); // a pmsync is never taken mid-transfer, so this must change nothing
    assert.equal(total(words), ACCOUNTS * START_BALANCE, `the total holds at epoch ${epoch} (seed ${seed})`);
    if (epoch === last) {
      if (acked.has(epoch)) assert.equal(digest(words), acked.get(epoch), `epoch ${epoch} equals its acknowledged pmsync (seed ${seed})`);
      return 'acked';
    }
    assert.equal(epoch, last + 1, `region epoch ${epoch}: the last acknowledged pmsync was ${last} (seed ${seed})`);
    // The in-flight pmsync completed: its caller died before it could say so, but it is the
    // region's last completed pmsync now, the one later checks must start from (a round in
    // which no pmsync is acknowledged may end with another one in flight).
    acked.set(epoch, digest(words));
    return 'in-flight';
  } finally {
    pool.close();
  }
}

test('SIGKILL of participants and regiond: every recovery is the last acknowledged pmsync or the in-flight one', async (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed}); ${kills} kills`);
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'regions-bank-'));
  const poolPath = path.join(dir, 'bank.pool');
  const acked = new Map<number, string>();
  const running = new Map<number, Running>();
  try {
    const pool = createPool(poolPath, { size: '16MiB', mode: 'shared' });
    pool.create('bank', { size: REGION_BYTES });
    const mapping = pool.open('bank').map();
    const words = new Int32Array(mapping.shared);
    for (let a = 0; a < ACCOUNTS; a++) words[balanceWord(a)] = START_BALANCE;
    const first = mapping.pmsync();
    acked.set(first.epoch, digest(words));
    mapping.unmap();
    pool.close();
    let regiondKills = 0;
    let inFlight = 0;
    let x = seed >>> 0 || 1;
    const random = (n: number): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    for (let k = 0; k < kills; k++) {
      for (let id = 0; id < PARTICIPANTS; id++) if (!running.has(id)) running.set(id, start(poolPath, id, k, acked));
      await new Promise((resolve) => setTimeout(resolve, 40 + random(120)));
      if (random(5) === 0) {
        const pid = serverPid(poolPath);
        if (pid) {
          process.kill(pid, 'SIGKILL');
          regiondKills++;
        }
      } else {
        const victim = running.get(random(PARTICIPANTS));
        victim?.child.kill('SIGKILL');
      }
      if (k % 10 === 9 || k === kills - 1) {
        for (const r of running.values()) r.child.kill('SIGKILL');
        await Promise.all([...running.values()].map((r) => r.done));
        running.clear();
        if (verify(poolPath, acked) === 'in-flight') inFlight++;
      } else {
        for (const [id, r] of running) {
          if (r.child.exitCode !== null || r.child.signalCode !== null) {
            await r.done;
            running.delete(id);
          }
        }
      }
    }
    t.diagnostic(`${kills} kills (${regiondKills} of regiond); ${acked.size} acknowledged pmsyncs; ${inFlight} checks found the in-flight pmsync committed`);
    assert.ok(acked.size > 10, 'the participants made progress');
  } finally {
    for (const r of running.values()) r.child.kill('SIGKILL');
    const pid = fs.existsSync(poolPath) ? serverPid(poolPath) : undefined;
    if (pid) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
