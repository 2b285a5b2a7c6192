// Fail-stop in shared mode: a device error inside a commit stops the pool's kernel, and the
// server that holds it answers that request with the IO error, then asks regiond to exit
// (onFailure) instead of serving on from undefined state; the next open recovers the pool by
// mounting it. The server runs here, over a SimDevice whose flush fails once armed, and a
// client speaks frames to it over a real Unix socket (the blocking client cannot share this
// process's event loop with the server).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PROTOCOL_VERSION, REQUEST_BYTES_MAX } from '../src/constants.js';
import { RegionError } from '../src/errors.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { RegiondServer } from '../src/regiond/server.js';
import { Syscalls } from '../src/syscall/syscalls.js';
import { decodePayload, encodeFrame, FrameReader } from '../src/wire/protocol.js';

/** Replies as they arrive on `socket`, in order. */
function replies(socket: net.Socket): () => Promise<{ id: number | null; ok: boolean; error?: { code: string; message: string } }> {
  const reader = new FrameReader(REQUEST_BYTES_MAX);
  const queue: unknown[] = [];
  const waiting: ((reply: unknown) => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const payload of reader.push(chunk)) {
      const { header } = decodePayload(payload);
      const next = waiting.shift();
      if (next) next(header);
      else queue.push(header);
    }
  });
  return () => new Promise((resolve) => {
    if (queue.length > 0) resolve(queue.shift() as never);
    else waiting.push(resolve as (reply: unknown) => void);
  });
}

test('a device error inside a commit: the request gets IO, then regiond is asked to exit, and nothing more is served', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-failstop-'));
  const device = new SimDevice({ sizeBytes: 16 * 1024 * 1024 });
  RegionManager.format(device);
  const kernel = RegionManager.mount(device, 'sim');
  const syscalls = new Syscalls(kernel, { path: 'sim', persistence: 'pmem', owner: process.getuid?.() ?? 0, mode: 'shared', server: null, applyAccess: () => {} });
  let failed: (error: RegionError) => void = () => {};
  const failure = new Promise<RegionError>((resolve) => (failed = resolve));
  const log: string[] = [];
  const server = new RegiondServer(syscalls, { pool: 'sim', startedAt: Date.now(), idleExitMs: 0, onIdle: () => {}, onFailure: failed, log: (line) => log.push(line), ownerUid: process.getuid?.() ?? 0, helloTimeoutMs: 60_000 });
  const listener = net.createServer();
  server.attach(listener);
  const address = path.join(dir, 's.sock');
  await new Promise<void>((resolve) => listener.listen(address, resolve));
  const socket = net.connect(address);
  const next = replies(socket);
  try {
    socket.write(encodeFrame({ id: 1, op: 'hello', protocol: PROTOCOL_VERSION }));
    assert.equal((await next()).ok, true);
    socket.write(encodeFrame({ id: 2, op: 'create', name: 'before', size: 65536, mode: 0o600 }));
    assert.equal((await next()).ok, true, 'the kernel works before the device fails');
    device.flush = () => {
      throw Object.assign(new Error('EIO: the device failed a flush'), { code: 'EIO' });
    };
    socket.write(encodeFrame({ id: 3, op: 'create', name: 'during', size: 65536, mode: 0o600 }));
    const reply = await next();
    assert.equal(reply.ok, false);
    assert.equal(reply.error?.code, 'IO', JSON.stringify(reply));
    const stopped = await failure;
    assert.equal(stopped.code, 'IO');
    assert.match(stopped.message, /EIO/, 'the error names the first device error');
    assert.ok(log.some((line) => line.includes('exiting so that the next open recovers the pool')), log.join('\n'));
    assert.throws(() => kernel.list(), (e) => e instanceof RegionError && e.code === 'IO', 'the stopped kernel serves nothing more');
  } finally {
    socket.destroy();
    server.stop();
    listener.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
