// openPool(path, { create: { size } }) and pool.open(name, { create }): the README's first
// lines. They create the directory, the pool and the region when missing and open what exists
// as it is; two processes doing it at once both succeed on one pool and one region (one
// creates, the other opens); a pool file appears complete or not at all, so a creation that
// lost the race changes nothing and leaves no file behind.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatPoolFile } from '../src/client/pool_creation.js';
import { isRegionError, openPool } from '../src/index.js';
import { stopRegionds } from './fixtures/regiond-harness.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
const CHILD = path.join(here, 'fixtures', 'open-or-create.js');
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-open-create-'));
const MiB = 1 << 20;
const pools: string[] = [];
after(async () => {
  for (const pool of pools) await stopRegionds(pool);
  fs.rmSync(base, { recursive: true, force: true });
});

/** Files left beside a pool by a creation: the temporary names end in '.new'. */
function leftovers(directory: string): string[] {
  return fs.readdirSync(directory).filter((name) => name.endsWith('.new'));
}

test('create makes the directory and the pool; a pool that exists opens as it is', () => {
  const poolPath = path.join(base, 'nested', 'deeper', 'app.pool');
  const pool = openPool(poolPath, { mode: 'exclusive', create: { size: '4MiB' } });
  assert.equal(pool.info().capacityBytes, 4 * MiB);
  const region = pool.open('counters', { create: { size: 4096 } });
  region.write(0, Uint8Array.of(7));
  const existing = pool.open('counters', { create: { size: 8192 } });
  assert.equal(existing.info().sizeBytes, 4096, 'an existing region keeps its size');
  assert.deepEqual([...pool.open('counters', { create: { size: 4096 } }).read(0, 1)], [7]);
  pool.close();
  const again = openPool(poolPath, { mode: 'exclusive', create: { size: '8MiB' } });
  try {
    assert.deepEqual(again.list().map((r) => r.name), ['counters'], 'the same pool, not a new one');
    assert.equal(again.info().capacityBytes, 4 * MiB, 'an existing pool keeps its size');
  } finally {
    again.close();
  }
  assert.deepEqual(leftovers(path.dirname(poolPath)), []);
});

test('create options are checked: a misspelt key or a missing size is INVALID, and nothing is created', () => {
  const poolPath = path.join(base, 'never', 'made.pool');
  const invalid = (e: unknown): boolean => isRegionError(e, 'INVALID');
  assert.throws(() => openPool(poolPath, { create: { szie: '4MiB' } as never }), invalid);
  assert.throws(() => openPool(poolPath, { create: {} as never }), invalid);
  assert.throws(() => openPool(poolPath, { create: { size: 4097 } }), invalid);
  assert.equal(fs.existsSync(path.dirname(poolPath)), false);
});

test('a creation that finds the pool made meanwhile changes nothing and leaves no file', () => {
  const poolPath = path.join(base, 'first.pool');
  const access = { socketMode: 0o600, group: null };
  assert.equal(formatPoolFile(poolPath, { sizeBytes: 4 * MiB, access }), true);
  const before = fs.readFileSync(poolPath);
  assert.equal(formatPoolFile(poolPath, { sizeBytes: 8 * MiB, access }), false);
  assert.ok(fs.readFileSync(poolPath).equals(before), 'the first pool is untouched');
  assert.deepEqual(leftovers(base), []);
});

interface Child {
  ready: Promise<void>;
  go(): void;
  result: Promise<{ status: number | null; line: string; stderr: string }>;
}

function startChild(poolPath: string, index: number): Child {
  const child = spawn(process.execPath, [CHILD, poolPath, 'shared', String(index)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, REGIONS_QUIET: '1', REGIONS_IDLE_EXIT: '20' },
  });
  let stdout = '';
  let stderr = '';
  let signalReady = (): void => {};
  const ready = new Promise<void>((resolve) => (signalReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.startsWith('ready\n')) signalReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<{ status: number | null; line: string; stderr: string }>((resolve) => {
    child.on('close', (status) => {
      signalReady(); // a child that died before saying ready must not hang the test
      resolve({ status, line: stdout.split('\n')[1] ?? '', stderr });
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), result };
}

test('two processes opening-or-creating one pool at once: one creates it, both use it', async () => {
  const poolPath = path.join(base, 'race', 'shared.pool');
  pools.push(poolPath);
  const children = [startChild(poolPath, 0), startChild(poolPath, 1)];
  await Promise.all(children.map((c) => c.ready)); // both loaded; released together
  for (const child of children) child.go();
  const results = await Promise.all(children.map((c) => c.result));
  for (const [index, result] of results.entries()) {
    assert.equal(result.status, 0, `child ${index}: ${result.stderr}`);
    const parsed = JSON.parse(result.line) as { ok?: string[]; error?: string; message?: string };
    assert.ok(parsed.ok !== undefined, `child ${index} failed: ${parsed.error}: ${parsed.message}`);
    assert.ok(parsed.ok.includes(`child-${index}`));
  }
  const pool = openPool(poolPath, { mode: 'shared' });
  try {
    assert.deepEqual(pool.list().map((r) => r.name), ['child-0', 'child-1', 'common'], 'both worked on one pool');
    assert.deepEqual([...pool.open('child-1').read(0, 2)], [0, 2]);
    assert.deepEqual([...pool.open('common').read(0, 2)], [1, 2], 'both stored into the one region "common"');
  } finally {
    pool.close();
  }
  assert.deepEqual(leftovers(path.dirname(poolPath)), []);
});
