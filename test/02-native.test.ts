// The arch layer (native/*.c through src/arch/addon.ts): mappings and their end, flush and
// msync, CRC32C, futexes across processes, OFD and POSIX locks across processes, and every
// argument error as a thrown error instead of a crash.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { addon, type MapHandle } from '../src/arch/addon.js';

const PAGE = 4096;
const here = path.dirname(fileURLToPath(import.meta.url));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-native-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

let fileCount = 0;
function scratchFile(sizeBytes: number): { file: string; fd: number } {
  const file = path.join(scratch, `f${fileCount++}.bin`);
  fs.writeFileSync(file, new Uint8Array(sizeBytes));
  return { file, fd: fs.openSync(file, 'r+') };
}

function mapped(sizeBytes: number): { file: string; fd: number; handle: MapHandle; bytes: Uint8Array } {
  const { file, fd } = scratchFile(sizeBytes);
  const handle = addon.map(fd, 0, sizeBytes, true, false);
  const [buffer] = addon.buffers(handle, sizeBytes);
  assert.ok(buffer);
  return { file, fd, handle, bytes: new Uint8Array(buffer) };
}

function errorWith(code: string, syscall?: string): (error: unknown) => boolean {
  return (error: unknown) => {
    const e = error as { code?: unknown; syscall?: unknown; message?: unknown };
    assert.equal(e.code, code, `expected code ${code}, got ${String(e.code)}: ${String(e.message)}`);
    if (syscall !== undefined) assert.equal(e.syscall, syscall);
    return true;
  };
}

function spawnFixture(name: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [path.join(here, 'fixtures', name), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (data: Buffer) => {
      text += data.toString();
      const end = text.indexOf('\n');
      if (end >= 0) resolve(text.slice(0, end));
    });
    child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before printing a line`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

test('map, buffers in chunks, and stores shared with the file', () => {
  const { file, fd, handle } = mapped(3 * PAGE);
  const chunks = addon.buffers(handle, 2 * PAGE);
  assert.deepEqual(chunks.map((b) => b.byteLength), [2 * PAGE, PAGE]);
  const last = new Uint8Array(chunks[1]!);
  last[10] = 0xab;
  const fromFile = Buffer.alloc(1);
  fs.readSync(fd, fromFile, 0, 1, 2 * PAGE + 10);
  assert.equal(fromFile[0], 0xab, 'a store through the mapping is in the file');
  fs.writeSync(fd, Uint8Array.of(0x5a), 0, 1, PAGE + 1);
  assert.equal(new Uint8Array(chunks[0]!)[PAGE + 1], 0x5a, 'a write to the file is in the mapping');
  addon.unmap(handle);
  fs.closeSync(fd);
  assert.equal(fs.readFileSync(file)[2 * PAGE + 10], 0xab);
});

test('a read-only mapping reads the file', () => {
  const { fd } = scratchFile(PAGE);
  fs.writeSync(fd, Uint8Array.of(1, 2, 3), 0, 3, 0);
  const handle = addon.map(fd, 0, PAGE, false, false);
  const [buffer] = addon.buffers(handle, PAGE);
  assert.deepEqual([...new Uint8Array(buffer!, 0, 3)], [1, 2, 3]);
  assert.equal(addon.flush(handle, 0, 3), 1, 'write-back needs only read access');
  addon.unmap(handle);
  fs.closeSync(fd);
});

test('after unmap every buffer is detached and the handle is closed', () => {
  const { fd, handle, bytes } = mapped(2 * PAGE);
  const [second] = addon.buffers(handle, PAGE).slice(1);
  const view = new DataView(second!);
  addon.unmap(handle);
  addon.unmap(handle); // idempotent
  assert.equal(bytes.length, 0);
  assert.equal(bytes[0], undefined, 'indexing a detached array reads nothing');
  assert.equal(second!.byteLength, 0);
  assert.throws(() => new Uint8Array(second!), TypeError);
  assert.throws(() => view.getUint8(0), TypeError);
  assert.throws(() => bytes.fill(1), TypeError);
  assert.throws(() => addon.buffers(handle, PAGE), errorWith('ECLOSED'));
  assert.throws(() => addon.flush(handle, 0, 1), errorWith('ECLOSED'));
  assert.throws(() => addon.msync(handle, 0, 1), errorWith('ECLOSED'));
  fs.closeSync(fd);
});

test('buffers cannot be transferred out from under unmap', async () => {
  const { fd, handle } = mapped(PAGE);
  const buffer = addon.buffers(handle, PAGE)[0]!;
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(buffer, [buffer]);
  } catch {
    // Node 20 copies an untransferable buffer instead of moving it; newer Node may throw.
  }
  assert.equal(buffer.byteLength, PAGE, 'the buffer stayed here');
  port1.close();
  port2.close();
  addon.unmap(handle);
  fs.closeSync(fd);
});

function mappingsOf(file: string): number {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.endsWith(file)).length;
}

test('a mapping dropped without unmap is unmapped by its finalizers, not before', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const { file, fd } = scratchFile(PAGE);
  let buffers: ArrayBuffer[] | undefined = addon.buffers(addon.map(fd, 0, PAGE, true, false), PAGE);
  const settle = async (): Promise<void> => {
    for (let round = 0; round < 5; round++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await settle();
  new Uint8Array(buffers[0]!)[0] = 9; // the handle is gone; its buffer still holds the memory
  assert.equal(mappingsOf(file), 1);
  buffers = undefined;
  await settle();
  assert.equal(mappingsOf(file), 0, 'the last finalizer unmapped it');
  assert.equal(fs.readFileSync(file)[0], 9);
  fs.closeSync(fd);
});

test('msync of any range inside the mapping, ERANGE outside', () => {
  const { fd, handle, bytes } = mapped(2 * PAGE);
  bytes[PAGE + 5] = 1;
  addon.msync(handle, PAGE + 5, 1);
  addon.msync(handle, 0, 2 * PAGE);
  addon.msync(handle, 2 * PAGE, 0);
  assert.throws(() => addon.msync(handle, PAGE, PAGE + 1), errorWith('ERANGE'));
  assert.throws(() => addon.msync(handle, -1, 1), errorWith('ERANGE'));
  addon.unmap(handle);
  fs.closeSync(fd);
});

test('flush counts every 64-byte line the range overlaps', () => {
  const { fd, handle } = mapped(2 * PAGE);
  assert.ok(['clwb', 'clflushopt', 'clflush'].includes(addon.flushInstruction()));
  assert.equal(addon.flush(handle, 1, 64), 2);
  assert.equal(addon.flush(handle, 0, 64), 1);
  assert.equal(addon.flush(handle, 63, 2), 2);
  assert.equal(addon.flush(handle, 100, 0), 0);
  assert.equal(addon.flush(handle, 0, 2 * PAGE), 128);
  assert.equal(addon.flush(handle, 2 * PAGE - 1, 1), 1);
  assert.equal(addon.fence(), undefined);
  assert.throws(() => addon.flush(handle, 2 * PAGE - 1, 2), errorWith('ERANGE'));
  addon.unmap(handle);
  fs.closeSync(fd);
});

test('futexWait: timed-out after the timeout, not-equal at once', () => {
  const sab = new SharedArrayBuffer(16);
  const started = performance.now();
  assert.equal(addon.futexWait(sab, 4, 0, 30), 'timed-out');
  assert.ok(performance.now() - started >= 29, 'waited the timeout');
  assert.equal(addon.futexWait(sab, 4, 1, 10_000), 'not-equal');
  new Int32Array(sab)[1] = -1;
  assert.equal(addon.futexWait(new Int32Array(sab), 4, 0xffffffff, 0), 'timed-out', 'signed and unsigned spellings match');
  assert.equal(addon.futexWait(new DataView(sab, 4), 0, -1, 1), 'timed-out');
  assert.equal(addon.futexWake(sab, 4, Infinity), 0, 'nobody waits');
});

test('futexWait in one process is woken by futexWake in another', async () => {
  const { file, fd, handle, bytes } = mapped(PAGE);
  const child = spawnFixture('native-futex-waker.js', [file, '64', '10000']);
  const done = exited(child);
  const output = firstLine(child);
  assert.equal(addon.futexWait(bytes, 64, 0, 10_000), 'ok');
  assert.equal(await output, 'woke 1');
  await done;
  assert.equal(child.exitCode, 0);
  assert.equal(new DataView(bytes.buffer).getUint32(68, true), 7, 'the child stored through the same memory');
  addon.unmap(handle);
  fs.closeSync(fd);
});

test('futex arguments: EINVAL unaligned, ERANGE outside, TypeError for non-memory', () => {
  const sab = new SharedArrayBuffer(16);
  assert.throws(() => addon.futexWait(sab, 2, 0, 0), errorWith('EINVAL'));
  assert.throws(() => addon.futexWait(new Uint8Array(sab, 1), 0, 0, 0), errorWith('EINVAL'));
  assert.throws(() => addon.futexWait(sab, 16, 0, 0), errorWith('ERANGE'));
  assert.throws(() => addon.futexWait(sab, 0, 0, -1), errorWith('ERANGE'));
  assert.throws(() => addon.futexWait(sab, 0, 2 ** 32, 0), errorWith('ERANGE'));
  assert.throws(() => addon.futexWake(sab, 13, 1), errorWith('ERANGE'));
  assert.throws(() => addon.futexWake({} as ArrayBuffer, 0, 1), TypeError);
  assert.throws(() => addon.futexWait(sab, 0, 0, '5' as unknown as number), TypeError);
});

test('OFD locks conflict between descriptions; POSIX locks do not within a process', () => {
  const { file, fd } = scratchFile(PAGE);
  const other = fs.openSync(file, 'r+');
  assert.equal(addon.lockTry(fd, 0, 1, true), true);
  assert.equal(addon.lockTry(other, 0, 1, false), false);
  assert.equal(addon.lockHolderPid(other, 0, 1), -1, 'the kernel reports no pid for an OFD lock');
  addon.unlock(fd, 0, 1);
  assert.equal(addon.lockTry(other, 0, 1, false), true);
  assert.equal(addon.lockTry(fd, 0, 1, false), true, 'shared locks share');
  assert.equal(addon.posixLockTry(fd, 1, 1), true);
  assert.equal(addon.posixLockTry(other, 1, 1), true, 'POSIX locks belong to the process');
  assert.equal(addon.lockHolderPid(other, 1, 1), 0, 'own locks never conflict');
  addon.posixUnlock(fd, 1, 1);
  fs.closeSync(other);
  fs.closeSync(fd);
});

test('a lock held by another process: lockTry fails, lockHolderPid names it, death frees it', async () => {
  const { file, fd } = scratchFile(PAGE);
  const child = spawnFixture('native-lock-holder.js', [file]);
  const done = exited(child);
  try {
    assert.equal(await firstLine(child), `locked ${child.pid}`);
    assert.equal(addon.lockTry(fd, 0, 1, true), false);
    assert.equal(addon.lockTry(fd, 0, 1, false), false);
    const started = performance.now();
    assert.equal(addon.lockWait(fd, 0, 1, true, 40), false);
    assert.ok(performance.now() - started >= 39, 'lockWait waited its timeout');
    assert.equal(addon.lockHolderPid(fd, 1, 1), child.pid, 'the POSIX lock reports its holder');
    assert.equal(addon.lockHolderPid(fd, 0, 1), -1, 'the OFD lock does not (l_pid = -1)');
    assert.equal(addon.posixLockTry(fd, 1, 1), false);
  } finally {
    child.kill('SIGKILL');
    await done;
  }
  assert.equal(addon.lockWait(fd, 0, 1, true, 5000), true, 'the dead holder released its OFD lock');
  assert.equal(addon.lockHolderPid(fd, 1, 1), 0);
  addon.unlock(fd, 0, 1);
  fs.closeSync(fd);
});

test('bad descriptors are EBADF', () => {
  const { file, fd } = scratchFile(PAGE);
  fs.closeSync(fd);
  assert.throws(() => addon.map(fd, 0, PAGE, true, false), errorWith('EBADF', 'fstat'));
  assert.throws(() => addon.map(-1, 0, PAGE, true, false), errorWith('EBADF'));
  assert.throws(() => addon.lockTry(fd, 0, 1, true), errorWith('EBADF', 'fcntl(F_OFD_SETLK)'));
  assert.throws(() => addon.lockWait(fd, 0, 1, true, 10), errorWith('EBADF'));
  assert.throws(() => addon.posixLockTry(fd, 0, 1), errorWith('EBADF', 'fcntl(F_SETLK)'));
  assert.throws(() => addon.lockHolderPid(2 ** 40, 0, 1), errorWith('EBADF'));
  const readOnly = fs.openSync(file, 'r');
  assert.throws(() => addon.map(readOnly, 0, PAGE, true, false), errorWith('EACCES', 'mmap'));
  assert.throws(() => addon.posixLockTry(readOnly, 0, 1), errorWith('EBADF'), 'a write lock needs a writable fd');
  fs.closeSync(readOnly);
});

test('map and buffers arguments: EINVAL unaligned, ERANGE outside, TypeError for wrong types', () => {
  const { fd } = scratchFile(2 * PAGE);
  assert.throws(() => addon.map(fd, 100, PAGE, true, false), errorWith('EINVAL'));
  assert.throws(() => addon.map(fd, PAGE, 2 * PAGE, true, false), errorWith('ERANGE'));
  assert.throws(() => addon.map(fd, 0, 0, true, false), errorWith('ERANGE'));
  assert.throws(() => addon.map(fd, 0, 1.5, true, false), TypeError);
  assert.throws(() => addon.map(fd, 0, PAGE, 1 as unknown as boolean, false), TypeError);
  const handle = addon.map(fd, PAGE, PAGE, true, false); // a page-aligned offset is fine
  assert.throws(() => addon.buffers(handle, 6000), errorWith('EINVAL'));
  assert.throws(() => addon.buffers(handle, 0), errorWith('ERANGE'));
  assert.throws(() => addon.buffers(handle, 2 ** 31), errorWith('ERANGE'));
  addon.unmap(handle);
  fs.closeSync(fd);
});

test('MAP_SYNC off DAX is EOPNOTSUPP (tmpfs is never DAX)', (t) => {
  if (!fs.existsSync('/dev/shm')) return t.skip('no /dev/shm on this machine');
  const file = fs.mkdtempSync('/dev/shm/regions-native-') + '/sync.bin';
  try {
    fs.writeFileSync(file, new Uint8Array(PAGE));
    const fd = fs.openSync(file, 'r+');
    assert.throws(() => addon.map(fd, 0, PAGE, true, true), errorWith('EOPNOTSUPP', 'mmap(MAP_SYNC)'));
    fs.closeSync(fd);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});

test('anything but a MapHandle is a TypeError', () => {
  for (const wrong of [{}, null, undefined, 42, 'handle', new ArrayBuffer(8)]) {
    assert.throws(() => addon.flush(wrong as unknown as MapHandle, 0, 1), TypeError);
    assert.throws(() => addon.unmap(wrong as unknown as MapHandle), TypeError);
  }
  assert.throws(() => (addon.msync as unknown as () => void)(), TypeError, 'missing arguments');
});
