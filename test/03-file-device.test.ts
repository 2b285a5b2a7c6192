// FileDevice (src/pm/file_device.ts): round trips in both persistence modes, on tmpfs and on
// an ordinary file system, survival of a SIGKILL after persist, pools larger than one chunk,
// resize, and the RegionErrors of misuse.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileDevice, type PersistenceOption } from '../src/pm/file_device.js';
import { isRegionError, type ErrorCode } from '../src/errors.js';

const BLOCK = 4096;
const TMPFS_MAGIC = 0x01021994;
const here = path.dirname(fileURLToPath(import.meta.url));

const isTmpfs = (directory: string): boolean => fs.statfsSync(directory).type === TMPFS_MAGIC;
const diskDir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-file-device-'));
const shmDir = fs.existsSync('/dev/shm') && isTmpfs('/dev/shm') ? fs.mkdtempSync('/dev/shm/regions-file-device-') : undefined;
after(() => {
  fs.rmSync(diskDir, { recursive: true, force: true });
  if (shmDir !== undefined) fs.rmSync(shmDir, { recursive: true, force: true });
});

const diskSkip = isTmpfs(diskDir) ? `os.tmpdir() (${os.tmpdir()}) is tmpfs, not an ordinary file system` : false;
const shmSkip = shmDir === undefined ? 'no tmpfs at /dev/shm on this machine' : false;

let poolCount = 0;
function poolPath(directory: string = diskDir): string {
  return path.join(directory, `p${poolCount++}.pool`);
}

function patternOf(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

function regionError(code: ErrorCode, pattern?: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(isRegionError(error, code), `expected RegionError ${code}, got ${String(error)}`);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  };
}

/** Quiet while opening on tmpfs (or with 'pmem' off DAX), unless a test captures the notice itself. */
function quietly<T>(run: () => T): T {
  const before = process.env['REGIONS_QUIET'];
  process.env['REGIONS_QUIET'] = '1';
  try {
    return run();
  } finally {
    if (before === undefined) delete process.env['REGIONS_QUIET'];
    else process.env['REGIONS_QUIET'] = before;
  }
}

function roundTrip(directory: string, persistence: PersistenceOption): FileDevice {
  const file = poolPath(directory);
  const device = quietly(() => FileDevice.create(file, { sizeBytes: 4 * BLOCK, persistence }));
  const data = patternOf(300, 1);
  device.write(1000, data);
  device.persist(1000, 300);
  assert.deepEqual(device.read(1000, 300), data);
  assert.deepEqual(device.counters.snapshot(), { linesFlushed: 6, fences: 1, bytesWritten: 300 });
  device.close();
  const reopened = quietly(() => new FileDevice(file, { persistence }));
  assert.equal(reopened.sizeBytes, 4 * BLOCK);
  assert.deepEqual(reopened.read(1000, 300), data);
  assert.deepEqual(reopened.read(0, 1000), new Uint8Array(1000), 'untouched bytes read zero');
  return reopened;
}

for (const persistence of ['pmem', 'msync'] as const) {
  test(`round trip on an ordinary file system, ${persistence} mode`, { skip: diskSkip }, () => {
    const device = roundTrip(diskDir, persistence);
    assert.equal(device.persistence, persistence);
    assert.equal(device.mapSync, false);
    device.close();
  });

  test(`round trip on tmpfs, ${persistence} mode`, { skip: shmSkip }, () => {
    const device = roundTrip(shmDir!, persistence);
    assert.equal(device.persistence, persistence);
    device.close();
  });
}

test('auto on tmpfs is emulated pmem, with one notice per process', { skip: shmSkip }, () => {
  const before = process.env['REGIONS_QUIET'];
  delete process.env['REGIONS_QUIET'];
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const first = FileDevice.create(poolPath(shmDir), { sizeBytes: BLOCK });
    const second = FileDevice.create(poolPath(shmDir), { sizeBytes: BLOCK, persistence: 'auto' });
    assert.equal(first.persistence, 'pmem');
    assert.equal(second.persistence, 'pmem');
    assert.ok(['clwb', 'clflushopt', 'clflush'].includes(first.flushInstruction));
    first.close();
    second.close();
  } finally {
    process.stderr.write = write;
    if (before !== undefined) process.env['REGIONS_QUIET'] = before;
  }
  assert.equal(lines.length, 1, `one notice, got ${JSON.stringify(lines)}`);
  assert.match(lines[0]!, /tmpfs.*does not survive a reboot/);
});

test('auto on an ordinary file system is msync (no DAX here)', { skip: diskSkip }, () => {
  const device = FileDevice.create(poolPath(), { sizeBytes: BLOCK });
  assert.ok(device.persistence === 'msync' || device.mapSync, 'msync unless the file system is DAX');
  device.close();
});

test('counters: lines in both modes, fences, bytes written by write and fill', () => {
  for (const persistence of ['pmem', 'msync'] as const) {
    const device = quietly(() => FileDevice.create(poolPath(), { sizeBytes: 2 * BLOCK, persistence }));
    device.fill(10, 100, 0xee);
    device.write(4090, new Uint8Array(12));
    device.flush(1, 64); // 2 lines
    device.flush(4090, 12); // 2 lines, 2 pages
    device.flush(0, 0); // none
    device.fence();
    device.fence();
    device.persist(0, 8192); // 128 lines
    assert.deepEqual(device.counters.snapshot(), { linesFlushed: 132, fences: 3, bytesWritten: 112 }, persistence);
    assert.deepEqual([...device.read(9, 3)], [0, 0xee, 0xee]);
    device.close();
  }
});

test('msync mode survives many unfenced flushes (early syncs past the pending bound)', () => {
  const device = FileDevice.create(poolPath(), { sizeBytes: 64 * BLOCK, persistence: 'msync' });
  for (let round = 0; round < 3000; round++) {
    const offset = ((round * 7) % 64) * BLOCK + 8; // scattered, never adjacent to the last
    device.write(offset, Uint8Array.of(round & 0xff));
    device.flush(offset, 1);
  }
  device.fence();
  assert.equal(device.counters.linesFlushed, 3000);
  device.close();
});

function killedWriterSurvives(persistence: 'pmem' | 'msync', directory: string): Promise<void> {
  const file = poolPath(directory);
  quietly(() => FileDevice.create(file, { sizeBytes: 8 * BLOCK, persistence }).close());
  const child = spawn(process.execPath, [path.join(here, 'fixtures', 'file-device-writer.js'), file, persistence, '5000', '20000', '9'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, REGIONS_QUIET: '1' },
  });
  return new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (data: Buffer) => {
      text += data.toString();
      if (text.includes('persisted\n')) child.kill('SIGKILL');
    });
    child.once('exit', (code, signal) => {
      try {
        assert.equal(signal, 'SIGKILL', `the writer ended by itself (code ${code}); output ${JSON.stringify(text)}`);
        const device = quietly(() => new FileDevice(file, { persistence }));
        assert.deepEqual(device.read(5000, 20000), patternOf(20000, 9));
        device.close();
        resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
}

test('kill -9 after persist: the data is there, msync mode', { skip: diskSkip }, () => killedWriterSurvives('msync', diskDir));
test('kill -9 after persist: the data is there, pmem mode on tmpfs', { skip: shmSkip }, () => killedWriterSurvives('pmem', shmDir!));

test('a pool of several chunks: read, write, fill and flush across boundaries', () => {
  const chunkBytes = 2 * BLOCK;
  for (const persistence of ['pmem', 'msync'] as const) {
    const device = quietly(() => FileDevice.create(poolPath(), { sizeBytes: 7 * BLOCK, persistence, chunkBytes }));
    const data = patternOf(2 * chunkBytes, 3); // spans two boundaries
    device.write(chunkBytes - 50, data);
    assert.deepEqual(device.read(chunkBytes - 50, data.length), data);
    device.fill(6 * BLOCK - 10, 20, 0x11); // across the boundary into the short last chunk
    assert.deepEqual(device.read(6 * BLOCK - 10, 20), new Uint8Array(20).fill(0x11));
    device.persist(chunkBytes - 1, 2);
    assert.equal(device.counters.linesFlushed, 2);
    assert.deepEqual(device.view(chunkBytes, BLOCK), data.subarray(50, 50 + BLOCK), 'a block inside a chunk');
    assert.deepEqual(device.view(chunkBytes - BLOCK, BLOCK), device.read(chunkBytes - BLOCK, BLOCK));
    assert.throws(() => device.view(chunkBytes - 1, 2), RangeError, 'a view may not cross a chunk');
    assert.equal(device.view(7 * BLOCK, 0).length, 0);
    device.close();
    const reopened = quietly(() => new FileDevice(device.path, { persistence, chunkBytes: 4 * BLOCK }));
    assert.deepEqual(reopened.read(chunkBytes - 50, data.length), data, 'other chunking, same bytes');
    reopened.close();
  }
});

test('resize grows the file, keeps the data, zeroes the rest, detaches old views', () => {
  const file = poolPath();
  const device = FileDevice.create(file, { sizeBytes: 2 * BLOCK, persistence: 'msync', chunkBytes: 2 * BLOCK });
  device.write(100, patternOf(50, 4));
  device.flush(100, 50); // pending across the remap
  const oldView = device.view(0, BLOCK);
  device.resize(5 * BLOCK);
  device.fence();
  assert.equal(oldView.length, 0, 'the old view is detached');
  assert.equal(device.sizeBytes, 5 * BLOCK);
  assert.equal(fs.statSync(file).size, 5 * BLOCK);
  assert.deepEqual(device.read(100, 50), patternOf(50, 4));
  assert.deepEqual(device.read(2 * BLOCK, 3 * BLOCK), new Uint8Array(3 * BLOCK));
  device.write(5 * BLOCK - 4, Uint8Array.of(1, 2, 3, 4));
  device.persist(5 * BLOCK - 4, 4);
  assert.throws(() => device.resize(4 * BLOCK), regionError('INVALID', /shrink/));
  assert.throws(() => device.resize(6 * BLOCK + 1), regionError('INVALID'));
  device.close();
  const reopened = new FileDevice(file);
  assert.deepEqual([...reopened.read(5 * BLOCK - 4, 4)], [1, 2, 3, 4]);
  reopened.close();
});

test('open and create errors: NOT_FOUND, INVALID size, EXISTS, INVALID options', () => {
  const missing = poolPath();
  assert.throws(() => new FileDevice(missing), regionError('NOT_FOUND', new RegExp(missing)));
  const odd = poolPath();
  fs.writeFileSync(odd, new Uint8Array(5000));
  assert.throws(() => new FileDevice(odd), regionError('INVALID', new RegExp(`${odd}.*5000`)));
  const empty = poolPath();
  fs.writeFileSync(empty, new Uint8Array(0));
  assert.throws(() => new FileDevice(empty), regionError('INVALID', /0 bytes/));
  assert.throws(() => FileDevice.create(odd, { sizeBytes: BLOCK }), regionError('EXISTS'));
  assert.throws(() => FileDevice.create(poolPath(), { sizeBytes: 100 }), regionError('INVALID'));
  assert.throws(() => FileDevice.create(poolPath(), { sizeBytes: 0 }), regionError('INVALID'));
  assert.throws(() => new FileDevice(odd, { persistence: 'disk' as PersistenceOption }), regionError('INVALID'));
  assert.throws(() => new FileDevice(diskDir), regionError('INVALID', /directory/));
  assert.throws(() => new FileDevice(diskDir, { readOnly: true }), regionError('INVALID', /regular file/));
  const chunky = poolPath();
  assert.throws(() => FileDevice.create(chunky, { sizeBytes: BLOCK, chunkBytes: 1000 }), regionError('INVALID'));
  assert.throws(() => FileDevice.create(chunky, { sizeBytes: BLOCK, chunkBytes: 2 ** 31 }), regionError('INVALID'));
  assert.equal(fs.existsSync(chunky), false, 'a bad option creates nothing');
});

test('out-of-range access is a RangeError', () => {
  const device = FileDevice.create(poolPath(), { sizeBytes: BLOCK, persistence: 'msync' });
  assert.throws(() => device.read(BLOCK - 1, 2), RangeError);
  assert.throws(() => device.read(-1, 1), RangeError);
  assert.throws(() => device.view(BLOCK, 1), RangeError);
  assert.throws(() => device.write(BLOCK, Uint8Array.of(1)), RangeError);
  assert.throws(() => device.fill(0, BLOCK + 1), RangeError);
  assert.throws(() => device.fill(0, 1, 256), RangeError);
  assert.throws(() => device.flush(1.5, 1), RangeError);
  assert.throws(() => device.persist(0, BLOCK + 64), RangeError);
  assert.equal(device.counters.bytesWritten, 0, 'nothing was written');
  device.close();
});

test('read-only devices refuse stores; closed devices refuse everything', () => {
  const file = poolPath();
  FileDevice.create(file, { sizeBytes: BLOCK }).close();
  const readOnly = new FileDevice(file, { readOnly: true });
  assert.equal(readOnly.read(0, 4).length, 4);
  assert.throws(() => readOnly.write(0, Uint8Array.of(1)), regionError('PERMISSION'));
  assert.throws(() => readOnly.fill(0, 1), regionError('PERMISSION'));
  assert.throws(() => readOnly.resize(2 * BLOCK), regionError('PERMISSION'));
  readOnly.close();

  const device = new FileDevice(file);
  assert.ok(device.fd >= 0);
  device.close();
  device.close(); // idempotent
  assert.equal(device.closed, true);
  const calls: Array<[string, () => unknown]> = [
    ['read', () => device.read(0, 1)],
    ['view', () => device.view(0, 1)],
    ['write', () => device.write(0, Uint8Array.of(1))],
    ['fill', () => device.fill(0, 1)],
    ['flush', () => device.flush(0, 1)],
    ['fence', () => device.fence()],
    ['persist', () => device.persist(0, 1)],
    ['resize', () => device.resize(2 * BLOCK)],
    ['fd', () => device.fd],
  ];
  for (const [name, call] of calls) assert.throws(call, regionError('CLOSED'), name);
});
