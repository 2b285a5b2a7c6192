// The arch layer's dirty tracking and freeze (native/track.c, uffd.c, shared_buffer.cc via
// src/arch/addon.ts): SharedArrayBuffers over a mapping, the userfaultfd + PAGEMAP_SCAN
// tracker, the mprotect + SIGSEGV tracker and its overflow, the freeze that holds worker
// threads, chaining to V8's handler, and the fatal message of a read-only region.
//
// Kernel writes: with the 'segv' tracker a read(2) into a protected page fails with EFAULT
// (tested below). That is why the map layer has prepareWrite(offset, length): mark the pages
// dirty and unprotect them before handing the memory to the kernel. The uffd tracker needs
// none of it: the kernel resolves its own write-protect fault.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { addon, type MapHandle } from '../src/arch/addon.js';

const PAGE = 4096;
const PAGES = 64;
const here = path.dirname(fileURLToPath(import.meta.url));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-track-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let memfdCount = 0;

interface Working {
  name: string;
  fd: number;
  handle: MapHandle;
  bytes: Uint8Array; // over buffers(): detached by unmap
  close(): void;
}

// A memfd working copy of `pages` pages, mapped read-write.
function working(pages = PAGES): Working {
  const name = `regions-track-${process.pid}-${memfdCount++}`;
  const fd = addon.memfdCreate(name, pages * PAGE);
  const handle = addon.map(fd, 0, pages * PAGE, true, false);
  const bytes = new Uint8Array(addon.buffers(handle, pages * PAGE)[0]!);
  return {
    name,
    fd,
    handle,
    bytes,
    close() {
      addon.unmap(handle);
      fs.closeSync(fd);
    },
  };
}

function fileByte(fd: number, offset: number): number {
  const one = Buffer.alloc(1);
  fs.readSync(fd, one, 0, 1, offset);
  return one[0]!;
}

function errorWith(code: string, syscall?: string): (error: unknown) => boolean {
  return (error: unknown) => {
    const e = error as { code?: unknown; syscall?: unknown; message?: unknown };
    assert.equal(e.code, code, `expected code ${code}, got ${String(e.code)}: ${String(e.message)}`);
    if (syscall !== undefined) assert.equal(e.syscall, syscall);
    return true;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function setBits(bitmap: Uint8Array): number[] {
  const pages: number[] = [];
  for (let i = 0; i < bitmap.length * 8; i++) if (bitmap[i >> 3]! & (1 << (i & 7))) pages.push(i);
  return pages;
}

function mappedNames(): string {
  return fs.readFileSync('/proc/self/maps', 'utf8');
}

// A worker that stores `value` at each of `offsets` (bytes) of the SharedArrayBuffer, then exits.
function workerStore(buffer: SharedArrayBuffer, offsets: number[], value: number): Promise<void> {
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const bytes = new Uint8Array(workerData.buffer);
     for (const offset of workerData.offsets) bytes[offset] = workerData.value;`,
    { eval: true, workerData: { buffer, offsets, value } },
  );
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exit ${code}`))));
  });
}

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(args: string[]): Promise<ChildResult> {
  // cwd: a core file, where the machine writes them, lands in the scratch directory.
  const child = spawn(process.execPath, [path.join(here, 'fixtures', 'native-track-child.js'), ...args], {
    cwd: scratch,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

test('memfdCreate: a zero-filled file of the size asked', () => {
  const fd = addon.memfdCreate('regions-size', 3 * PAGE + 5);
  assert.equal(fs.fstatSync(fd).size, 3 * PAGE + 5);
  assert.equal(fileByte(fd, 3 * PAGE + 4), 0);
  assert.match(fs.readlinkSync(`/proc/self/fd/${fd}`), /^\/memfd:regions-size/);
  fs.closeSync(fd);
  assert.throws(() => addon.memfdCreate(7 as unknown as string, PAGE), TypeError);
  assert.throws(() => addon.memfdCreate('x', -1), errorWith('ERANGE'));
  assert.throws(() => addon.memfdCreate('x'.repeat(250), PAGE), errorWith('ERANGE'));
  assert.throws(() => addon.memfdCreate('a\0b', PAGE), errorWith('EINVAL'));
});

test('sharedBuffer: Atomics, a worker store seen here, the file sees both', async () => {
  const w = working();
  const shared = addon.sharedBuffer(w.handle, PAGE, 2 * PAGE);
  assert.ok(shared instanceof SharedArrayBuffer);
  assert.equal(shared.byteLength, 2 * PAGE);
  const words = new Int32Array(shared);
  assert.equal(Atomics.add(words, 0, 5), 0);
  assert.equal(Atomics.add(words, 0, 2), 5);
  assert.equal(w.bytes[PAGE], 7, 'the SharedArrayBuffer is the mapping, at its offset');
  await workerStore(shared, [PAGE + 9], 0x42);
  assert.equal(w.bytes[2 * PAGE + 9], 0x42, 'the worker stored into the mapping');
  assert.equal(fileByte(w.fd, 2 * PAGE + 9), 0x42, 'and into the memfd');
  w.close();
});

test('sharedBuffer after unmap: zeros, harmless writes, buffers() detached, file untouched', async () => {
  const w = working();
  const shared = addon.sharedBuffer(w.handle, 0, PAGES * PAGE);
  const view = new Uint8Array(shared);
  view[100] = 9;
  assert.ok(mappedNames().includes(w.name));
  addon.unmap(w.handle);
  assert.equal(w.bytes.length, 0, 'buffers() ArrayBuffers are detached');
  assert.ok(!mappedNames().includes(w.name), 'the memfd is no longer mapped');
  assert.equal(view[100], 0, 'the SharedArrayBuffer reads zeros');
  view[100] = 1;
  Atomics.add(new Int32Array(shared), 10, 1);
  await workerStore(shared, [5, PAGES * PAGE - 1], 3); // a worker too
  assert.equal(fileByte(w.fd, 100), 9, 'writes after unmap never reach the file');
  assert.equal(fileByte(w.fd, 5), 0);
  assert.throws(() => addon.sharedBuffer(w.handle, 0, PAGE), errorWith('ECLOSED'));
  fs.closeSync(w.fd);
});

test('sharedBuffer holds the range after its handle is collected, until it is collected too', async () => {
  const name = `regions-track-gc-${process.pid}`;
  const fd = addon.memfdCreate(name, 4 * PAGE);
  let shared: SharedArrayBuffer | undefined = (() => {
    const handle = addon.map(fd, 0, 4 * PAGE, true, false);
    addon.trackRegister(handle, { mode: 'segv', label: 'gc', bitmap: new Uint8Array(1) });
    return addon.sharedBuffer(handle, 0, 4 * PAGE);
  })();
  const settle = async (): Promise<void> => {
    for (let round = 0; round < 5; round++) {
      gc();
      await sleep(5);
    }
  };
  await settle();
  new Uint8Array(shared)[PAGE] = 6; // the handle is gone: its registration too, writable again
  assert.equal(fileByte(fd, PAGE), 6, 'still the real mapping');
  assert.ok(mappedNames().includes(name));
  shared = undefined;
  await settle();
  await until(() => !mappedNames().includes(name), 'the last deleter to unmap');
  fs.closeSync(fd);
});

test('sharedBuffer and protect arguments', () => {
  const w = working(2);
  assert.throws(() => addon.sharedBuffer(w.handle, PAGE, PAGE + 1), errorWith('ERANGE'));
  assert.throws(() => addon.sharedBuffer(w.handle, 0, 0), errorWith('ERANGE'));
  assert.throws(() => addon.sharedBuffer({} as MapHandle, 0, 1), TypeError);
  assert.throws(() => addon.protect(w.handle, 1, PAGE, 'r'), errorWith('EINVAL'));
  assert.throws(() => addon.protect(w.handle, 0, 100, 'r'), errorWith('EINVAL'));
  assert.throws(() => addon.protect(w.handle, 0, 3 * PAGE, 'r'), errorWith('ERANGE'));
  assert.throws(() => addon.protect(w.handle, 0, PAGE, 'x' as 'r'), TypeError);
  addon.protect(w.handle, 0, PAGE, 'r');
  assert.equal(w.bytes[0], 0, 'readable');
  addon.protect(w.handle, 0, 2 * PAGE, 'rw');
  w.bytes[0] = 1;
  const readOnly = addon.map(w.fd, 0, PAGE, false, false);
  assert.throws(() => addon.protect(readOnly, 0, PAGE, 'rw'), errorWith('EACCES'));
  addon.unmap(readOnly);
  w.close();
});

test('uffd: written pages, re-protection, kernel writes, worker stores', async (t) => {
  if (!addon.uffdAvailable()) return t.skip('userfaultfd with WP_ASYNC on shmem is not available on this kernel');
  const w = working();
  const uffd = addon.uffdOpen();
  try {
    w.bytes[0] = 1; // before registration: not reported
    addon.uffdRegister(uffd, w.handle);
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], [], 'everything starts protected');
    w.bytes[3 * PAGE + 1] = 1;
    w.bytes[40 * PAGE] = 1; // never touched before: WP_UNPOPULATED protected it too
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], [3, 40]);
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], []);
    w.bytes[3 * PAGE + 2] = 2;
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, false)], [3], 'a peek');
    assert.deepEqual([...addon.pagemapWritten(w.handle, 4 * PAGE, 10 * PAGE, true)], [], 'outside the range asked');
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], [3]);

    const source = path.join(scratch, 'source.bin');
    fs.writeFileSync(source, Buffer.from('kernel write'));
    const sourceFd = fs.openSync(source, 'r');
    assert.equal(fs.readSync(sourceFd, w.bytes, 12 * PAGE + 4, 12, 0), 12, 'read(2) into a protected page works');
    fs.closeSync(sourceFd);
    assert.equal(Buffer.from(w.bytes.subarray(12 * PAGE + 4, 12 * PAGE + 16)).toString(), 'kernel write');
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], [12], 'and counts as written');

    await workerStore(addon.sharedBuffer(w.handle, 0, PAGES * PAGE), [7 * PAGE, 63 * PAGE + 4095], 1);
    assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], [7, 63], 'worker stores are seen');

    // Many scattered pages: more than one PAGEMAP_SCAN batch of regions.
    const big = working(2048);
    addon.uffdRegister(uffd, big.handle);
    for (let page = 0; page < 2048; page += 2) big.bytes[page * PAGE] = 1;
    const written = addon.pagemapWritten(big.handle, 0, 2048 * PAGE, true);
    assert.equal(written.length, 1024);
    assert.ok(written.every((page, i) => page === 2 * i));
    addon.uffdUnregister(uffd, big.handle);
    big.close();

    assert.throws(() => addon.pagemapWritten(w.handle, 1, PAGE, true), errorWith('EINVAL'));
    assert.throws(() => addon.pagemapWritten(w.handle, 0, (PAGES + 1) * PAGE, true), errorWith('ERANGE'));
    addon.uffdUnregister(uffd, w.handle);
    assert.throws(() => addon.pagemapWritten(w.handle, 0, PAGE, true), errorWith('EPERM'), 'not registered');
    w.bytes[5 * PAGE] = 1; // unprotected now
  } finally {
    fs.closeSync(uffd);
    w.close();
  }
  const spare = working(1);
  assert.throws(() => addon.uffdRegister(uffd, spare.handle), errorWith('EBADF'), 'the closed userfaultfd');
  spare.close();
});

test('segv: first stores mark exactly their pages; thaw with r protects again', () => {
  const w = working();
  const bitmap = new Uint8Array(PAGES / 8);
  addon.trackRegister(w.handle, { mode: 'segv', label: 'segv-test', bitmap });
  assert.deepEqual(addon.trackStatus(w.handle), { faults: 0, overflow: false });
  assert.equal(w.bytes[5 * PAGE], 0, 'reads do not fault');
  w.bytes[PAGE + 10] = 1;
  w.bytes[2 * PAGE] = 2;
  w.bytes[2 * PAGE + 1] = 3; // the page is writable now: no second fault
  assert.deepEqual(setBits(bitmap), [1, 2]);
  assert.deepEqual(addon.trackStatus(w.handle), { faults: 2, overflow: false });
  assert.equal(fileByte(w.fd, 2 * PAGE + 1), 3, 'every store landed');

  bitmap.fill(0);
  addon.trackReset(w.handle);
  addon.trackThaw(w.handle, 'r');
  w.bytes[PAGE + 11] = 1;
  assert.deepEqual(setBits(bitmap), [1], 'protected again: the store faulted');
  assert.deepEqual(addon.trackStatus(w.handle), { faults: 1, overflow: false });

  const source = path.join(scratch, 'efault.bin');
  fs.writeFileSync(source, Buffer.from('abc'));
  const sourceFd = fs.openSync(source, 'r');
  // The kernel does not take our fault: read(2) into a protected page fails (prepareWrite's reason).
  assert.throws(() => fs.readSync(sourceFd, w.bytes, 20 * PAGE, 3, 0), errorWith('EFAULT'));
  assert.equal(fs.readSync(sourceFd, w.bytes, PAGE, 3, 0), 3, 'into an unprotected page it works');
  fs.closeSync(sourceFd);
  w.close();
});

test('segv: stores from a worker set bits too', async () => {
  const w = working();
  const bitmap = new Uint8Array(new SharedArrayBuffer(PAGES / 8));
  addon.trackRegister(w.handle, { mode: 'segv', label: 'segv-worker', bitmap });
  await workerStore(addon.sharedBuffer(w.handle, 0, PAGES * PAGE), [9 * PAGE, 9 * PAGE + 1, 33 * PAGE], 4);
  assert.deepEqual(setBits(bitmap), [9, 33]);
  assert.equal(addon.trackStatus(w.handle).faults, 2);
  w.close();
});

test('segv overflow: past faultPagesMax the whole mapping is writable and flagged', () => {
  const w = working();
  const bitmap = new Uint8Array(PAGES / 8);
  addon.trackRegister(w.handle, { mode: 'segv', label: 'overflow', bitmap, faultPagesMax: 4 });
  for (let page = 0; page < 10; page++) w.bytes[page * 3 * PAGE] = page + 1;
  for (let page = 0; page < 10; page++) assert.equal(fileByte(w.fd, page * 3 * PAGE), page + 1, `store ${page}`);
  assert.deepEqual(addon.trackStatus(w.handle), { faults: 4, overflow: true });
  assert.deepEqual(setBits(bitmap), [0, 3, 6, 9]);
  bitmap.fill(0);
  addon.trackReset(w.handle);
  addon.trackThaw(w.handle, 'r');
  w.bytes[PAGE] = 1;
  assert.deepEqual(addon.trackStatus(w.handle), { faults: 1, overflow: false }, 'tracking again after reset');
  w.close();
});

// A worker that stores into the mapped SharedArrayBuffer in a loop and counts its stores in
// a plain SharedArrayBuffer, until told to stop.
function spinningWriter(target: SharedArrayBuffer): { control: Int32Array; stop(): Promise<void> } {
  const control = new Int32Array(new SharedArrayBuffer(8)); // [0] stop, [1] stores done
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const target = new Int32Array(workerData.target);
     const control = new Int32Array(workerData.control);
     while (Atomics.load(control, 0) === 0) {
       target[0] = target[0] + 1;
       target[1024 * 5] = target[0];
       Atomics.add(control, 1, 1);
     }`,
    { eval: true, workerData: { target, control: control.buffer } },
  );
  const exited = new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', () => resolve());
  });
  return {
    control,
    stop: () => {
      Atomics.store(control, 0, 1);
      return exited;
    },
  };
}

for (const mode of ['none', 'segv', 'uffd'] as const) {
  test(`freeze (${mode}): a storing worker is held still until thaw`, async (t) => {
    if (mode === 'uffd' && !addon.uffdAvailable()) return t.skip('userfaultfd is not available');
    const w = working();
    const bitmap = new Uint8Array(PAGES / 8);
    const uffd = mode === 'uffd' ? addon.uffdOpen() : -1;
    if (uffd >= 0) addon.uffdRegister(uffd, w.handle);
    addon.trackRegister(w.handle, { mode, label: `freeze-${mode}`, bitmap });
    const target = addon.sharedBuffer(w.handle, 0, PAGES * PAGE);
    const writer = spinningWriter(target);
    try {
      await until(() => Atomics.load(writer.control, 1) > 1000, 'the worker to run');
      addon.trackFreeze(w.handle);
      assert.throws(() => addon.trackFreeze(w.handle), errorWith('EINVAL'), 'frozen already');
      const first = Buffer.from(w.bytes.subarray(0, 6 * PAGE));
      const count = Atomics.load(writer.control, 1);
      await sleep(50);
      const second = Buffer.from(w.bytes.subarray(0, 6 * PAGE));
      assert.ok(first.equals(second), 'no store while frozen');
      // It may still count the store it made just before the freeze, and no more.
      assert.ok(Atomics.load(writer.control, 1) - count <= 1, 'the worker is blocked');
      const words = new Int32Array(target);
      const behind = words[0]! - words[1024 * 5]!;
      assert.ok(behind === 0 || behind === 1, `one instant of the worker's program order (page 5 is ${behind} behind)`);
      if (mode === 'segv') {
        bitmap.fill(0);
        addon.trackReset(w.handle);
      }
      if (mode === 'uffd') addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true);
      addon.trackThaw(w.handle, mode === 'segv' ? 'r' : 'rw');
      await until(() => Atomics.load(writer.control, 1) > count + 1000, 'the worker to continue');
      if (mode === 'segv') assert.deepEqual(setBits(bitmap), [0, 5], 'tracked again after thaw');
      if (mode === 'uffd') assert.deepEqual([...addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true)], [0, 5]);
    } finally {
      w.close(); // releases the worker if an assertion failed while frozen
      await writer.stop();
      if (uffd >= 0) fs.closeSync(uffd);
    }
  });
}

// pmsync's contract on the tracker: between two frozen snapshots, every page whose bytes
// changed is reported (segv: its bit or overflow; uffd: pagemapWritten).
for (const mode of ['segv', 'uffd'] as const) {
  test(`freeze snapshots miss no store (${mode}, 3 workers storing at random)`, async (t) => {
    if (mode === 'uffd' && !addon.uffdAvailable()) return t.skip('userfaultfd is not available');
    const w = working();
    const bitmap = new Uint8Array(PAGES / 8);
    const uffd = mode === 'uffd' ? addon.uffdOpen() : -1;
    if (uffd >= 0) addon.uffdRegister(uffd, w.handle);
    addon.trackRegister(w.handle, { mode, label: `snapshots-${mode}`, bitmap, faultPagesMax: 48 });
    const target = addon.sharedBuffer(w.handle, 0, PAGES * PAGE);
    const control = new Int32Array(new SharedArrayBuffer(4));
    const workers = [1, 2, 3].map(
      (seed) =>
        new Worker(
          `const { workerData } = require('node:worker_threads');
           const words = new Int32Array(workerData.target);
           const control = new Int32Array(workerData.control);
           let x = workerData.seed;
           for (let n = 1; Atomics.load(control, 0) === 0; n++) {
             x = (x * 1103515245 + 12345) >>> 0;
             const page = (x >>> 8) % workerData.pages;
             words[page * 1024 + workerData.seed] = n;
           }`,
          { eval: true, workerData: { target, control: control.buffer, seed, pages: PAGES } },
        ),
    );
    const exits = workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve)));
    try {
      let previous = Buffer.from(w.bytes);
      let overflows = 0;
      for (let round = 0; round < 150; round++) {
        await sleep(round % 3);
        addon.trackFreeze(w.handle);
        const snapshot = Buffer.from(w.bytes);
        let dirty: Set<number>;
        if (mode === 'segv') {
          const status = addon.trackStatus(w.handle);
          if (status.overflow) overflows++;
          dirty = new Set(status.overflow ? Array.from({ length: PAGES }, (_, i) => i) : setBits(bitmap));
          bitmap.fill(0);
          addon.trackReset(w.handle);
        } else {
          dirty = new Set(addon.pagemapWritten(w.handle, 0, PAGES * PAGE, true));
        }
        addon.trackThaw(w.handle, mode === 'segv' ? 'r' : 'rw');
        for (let page = 0; page < PAGES; page++) {
          const changed = !snapshot.subarray(page * PAGE, (page + 1) * PAGE).equals(previous.subarray(page * PAGE, (page + 1) * PAGE));
          if (changed && !dirty.has(page)) assert.fail(`round ${round}: page ${page} changed but was not reported`);
        }
        previous = snapshot;
      }
      t.diagnostic(`${overflows} of 150 rounds overflowed`);
    } finally {
      Atomics.store(control, 0, 1);
      w.close();
      await Promise.all(exits);
      if (uffd >= 0) fs.closeSync(uffd);
    }
  });
}

test('unmap and trackUnregister release frozen threads', async () => {
  const w = working();
  addon.trackRegister(w.handle, { mode: 'none', label: 'release' });
  const writer = spinningWriter(addon.sharedBuffer(w.handle, 0, PAGES * PAGE));
  try {
    await until(() => Atomics.load(writer.control, 1) > 100, 'the worker to run');
    addon.trackFreeze(w.handle);
    const count = Atomics.load(writer.control, 1);
    await sleep(20);
    assert.ok(Atomics.load(writer.control, 1) - count <= 1, 'frozen: at most the store made before the freeze is counted');
    addon.trackUnregister(w.handle);
    await until(() => Atomics.load(writer.control, 1) > count + 100, 'the worker after unregister');
    addon.trackRegister(w.handle, { mode: 'none', label: 'release' });
    addon.trackFreeze(w.handle);
    const frozen = Atomics.load(writer.control, 1) + 1;
    addon.unmap(w.handle); // the worker goes on, into zero memory
    await until(() => Atomics.load(writer.control, 1) > frozen + 100, 'the worker after unmap');
  } finally {
    addon.unmap(w.handle);
    await writer.stop();
    fs.closeSync(w.fd);
  }
});

test('tracking arguments: TypeError, ERANGE, EEXIST, EINVAL, ECLOSED', () => {
  const w = working(16);
  const h = w.handle;
  assert.throws(() => addon.trackRegister(h, undefined as never), TypeError);
  assert.throws(() => addon.trackRegister(h, { mode: 'x', label: 'l' } as never), TypeError);
  assert.throws(() => addon.trackRegister(h, { mode: 'none' } as never), TypeError);
  assert.throws(() => addon.trackRegister(h, { mode: 'segv', label: 'l' }), TypeError, 'segv needs a bitmap');
  assert.throws(() => addon.trackRegister(h, { mode: 'segv', label: 'l', bitmap: new Uint8Array(1) }), errorWith('ERANGE'));
  assert.throws(() => addon.trackRegister(h, { mode: 'segv', label: 'l', bitmap: new Uint8Array(2), faultPagesMax: 0 }), errorWith('ERANGE'));
  assert.throws(() => addon.trackRegister(h, { mode: 'segv', label: 'l', bitmap: new Uint8Array(2), faultPagesMax: 1e9 }), errorWith('ERANGE'));
  assert.throws(() => addon.trackRegister(h, { mode: 'none', label: 'l'.repeat(128) }), errorWith('ERANGE'));
  assert.throws(() => addon.trackRegister(h, { mode: 'none', label: 'l', dataOffset: -1 }), errorWith('ERANGE'));
  const other = working(16);
  assert.throws(() => addon.trackRegister(h, { mode: 'segv', label: 'l', bitmap: other.bytes }), TypeError, 'mapped memory');
  other.close();
  const readOnly = addon.map(w.fd, 0, PAGE, false, false);
  assert.throws(() => addon.trackRegister(readOnly, { mode: 'segv', label: 'l', bitmap: new Uint8Array(1) }), errorWith('EINVAL'));
  addon.trackRegister(readOnly, { mode: 'readonly', label: 'ro' });
  assert.throws(() => addon.trackThaw(readOnly, 'rw'), errorWith('EACCES'));
  addon.unmap(readOnly);
  assert.throws(() => addon.trackStatus(h), errorWith('EINVAL'), 'not registered');
  assert.throws(() => addon.trackFreeze(h), errorWith('EINVAL'));
  assert.throws(() => addon.trackReset(h), errorWith('EINVAL'));
  addon.trackUnregister(h); // nothing to do
  addon.trackRegister(h, { mode: 'none', label: 'l' });
  assert.throws(() => addon.trackRegister(h, { mode: 'none', label: 'l' }), errorWith('EEXIST'));
  assert.throws(() => addon.trackThaw(h, 'none' as 'r'), TypeError);
  w.close();
  assert.throws(() => addon.trackStatus(h), errorWith('ECLOSED'));
  assert.throws(() => addon.trackRegister(h, { mode: 'none', label: 'l' }), errorWith('ECLOSED'));
  assert.throws(() => addon.pagemapWritten(h, 0, PAGE, false), errorWith('ECLOSED'));
  assert.throws(() => addon.trackStatus({} as MapHandle), TypeError);
});

test('a fault outside our ranges still reaches V8: WebAssembly out of bounds throws RuntimeError', async () => {
  const result = await runChild(['wasm']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^previous-handler yes$/m, 'Node had a SIGSEGV handler to chain to');
  assert.match(result.stdout, /^wasm ok load\(8\)=0 caught=RuntimeError: memory access out of bounds bitmap=8$/m);
});

test('a real fault outside our ranges kills by SIGSEGV as before', async () => {
  const result = await runChild(['fault']);
  assert.equal(result.signal, 'SIGSEGV', `exit ${result.code}: ${result.stderr}`);
  assert.doesNotMatch(result.stdout, /reading/);
  assert.doesNotMatch(result.stderr, /regions:/);
});

for (const access of ['r', 'w']) {
  test(`a fault inside a tracked range that is not ours (PROT_NONE, ${access}) kills by SIGSEGV`, async () => {
    const result = await runChild(['foreign-none', access]);
    assert.equal(result.signal, 'SIGSEGV', `exit ${result.code}: ${result.stderr}`);
    assert.match(result.stdout, /^tracked store ok$/m);
    assert.doesNotMatch(result.stdout, /reading/);
  });
}

test('a store into a read-only region: one line naming label and offset, then SIGSEGV', async () => {
  const offset = 5 * PAGE + 123;
  const result = await runChild(['readonly', String(offset)]);
  assert.equal(result.signal, 'SIGSEGV', `exit ${result.code}: ${result.stderr}`);
  assert.match(result.stdout, /^reading 0$/m);
  assert.doesNotMatch(result.stdout, /survived/);
  assert.equal(result.stderr, `regions: store into read-only region "ro-test" at offset ${offset}\n`);
  const biased = await runChild(['readonly', String(offset), String(PAGE)]);
  assert.equal(biased.signal, 'SIGSEGV');
  assert.equal(biased.stderr, `regions: store into read-only region "ro-test" at offset ${offset - PAGE}\n`, 'dataOffset');
});

test('the freezing thread storing into its frozen mapping dies with a message instead of hanging', async () => {
  const result = await runChild(['self-freeze']);
  assert.equal(result.signal, 'SIGSEGV', `exit ${result.code}: ${result.stderr}`);
  assert.match(result.stderr, /^regions: store into frozen region "frozen-test" at offset 4097 by the thread that froze it/);
});
