// Protocol fuzz: at least 10,000 random and mutated requests over raw sockets to one regiond:
// valid requests, valid frames with mutated fields, truncated frames, huge lengths, lying
// header lengths, garbage bytes, wrong protocol versions, requests before hello. Every
// framed request must get a reply or a closed connection, never silence; afterwards regiond
// (the same process) still serves a valid client and the pool passes fsck. The seed is
// printed; REGIONS_SEED=N replays a run, REGIONS_FUZZ_REQUESTS=N changes the count.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION } from '../src/constants.js';
import { createPool, openPool } from '../src/index.js';
import { decodePayload, encodeFrame, FrameReader, OPS } from '../src/wire/protocol.js';
import { Raw, type Reply } from './fixtures/raw-connection.js';
import { socketAddress } from '../src/wire/socket_path.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '..', '..', 'bin', 'regions.js');
const REQUESTS = Number(process.env['REGIONS_FUZZ_REQUESTS'] ?? 10_000);
const seed = Number(process.env['REGIONS_SEED'] ?? 1 + Math.floor(Math.random() * 2 ** 31));
const REPLY_WAIT_MS = 10_000; // a framed request unanswered this long means regiond is stuck
const TMPFS_MAGIC = 0x01021994;

const tmpRoot = fs.existsSync('/dev/shm') && fs.statfsSync('/dev/shm').type === TMPFS_MAGIC ? '/dev/shm' : os.tmpdir();
const base = fs.mkdtempSync(path.join(tmpRoot, 'regions-fuzz-'));
process.env['REGIONS_QUIET'] = '1';
after(() => fs.rmSync(base, { recursive: true, force: true }));

/** mulberry32: small, seeded, good enough to pick fuzz cases. */
function prng(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Builds requests: valid ones from what it has seen, and mutations of them. */
class Generator {
  private readonly names: string[] = ['r0'];
  private readonly refs: { index: number; generation: number }[] = [];
  private readonly stagings: number[] = [];
  private id = 1;

  constructor(private readonly random: () => number) {}

  private pick<T>(list: readonly T[]): T {
    const item = list[Math.floor(this.random() * list.length)];
    assert.ok(item !== undefined);
    return item;
  }

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  name(): string {
    return this.random() < 0.7 ? this.pick(this.names) : `r${this.int(40)}`;
  }

  ref(): unknown {
    return this.refs.length > 0 && this.random() < 0.8 ? this.pick(this.refs) : { index: this.int(20), generation: 1 + this.int(3) };
  }

  /** A well-formed request. map always carries one bad field: a real mapping would make regiond signal this process at each pmsync. */
  valid(): Record<string, unknown> & { op: string } {
    const id = this.id++;
    const op = this.pick(OPS.filter((o) => o !== 'hello' && o !== 'close' && o !== 'grow' && o !== 'retire'));
    const size = this.pick([4096, 65536, 100_000, 1 << 20]);
    const common = { id, op };
    switch (op) {
      case 'create': return { ...common, name: this.name(), size, mode: this.pick([0o600, 0o644, 0o666]) };
      case 'open': return { ...common, name: this.name(), access: this.pick(['rw', 'ro']) };
      case 'stat': case 'remove': return { ...common, name: this.name() };
      case 'regionInfo': case 'pmsync': return { ...common, region: this.ref() };
      case 'list': return this.random() < 0.5 ? common : { ...common, after: this.name() };
      case 'rename': return { ...common, from: this.name(), to: this.name() };
      case 'resize': return { ...common, name: this.name(), size };
      case 'chmod': return { ...common, name: this.name(), mode: this.pick([0o600, 0o644]) };
      case 'info': return common;
      case 'check': return { ...common, repair: this.random() < 0.5 };
      case 'read': return { ...common, region: this.ref(), offset: this.int(70_000), length: this.int(9000) };
      case 'write': return { ...common, region: this.ref(), offset: this.int(70_000) };
      case 'stage': return { ...common, region: this.ref(), offset: this.int(4096), length: this.int(3 << 20) };
      case 'stageData': return { ...common, staging: this.stagings.length > 0 ? this.pick(this.stagings) : this.int(5), at: 0 };
      case 'stageCommit': case 'stageAbort': return { ...common, staging: this.stagings.length > 0 ? this.pick(this.stagings) : this.int(5) };
      case 'map': return { ...common, region: this.ref(), access: 'rw', offset: 0, length: 4096, tracking: this.pick(['faults', 7, null, 'FAULT']) };
      case 'unmap': return { ...common, mapping: this.int(5) };
      default: return common;
    }
  }

  data(op: string): Uint8Array {
    if (op !== 'write' && op !== 'stageData' && this.random() > 0.02) return new Uint8Array(0);
    return new Uint8Array(this.pick([0, 1, 100, 4096, 5000, 70_000])).fill(this.int(256));
  }

  /** A value of a random kind, often hostile. */
  value(): unknown {
    return this.pick<() => unknown>([
      () => this.pick([0, -1, 1, 4095, 4096, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1.5, 1e308, -0]),
      () => this.int(1 << 20),
      () => this.pick(['', 'rw', 'ro', 'fault', 'r0', '\u0000', '\ud800', 'x'.repeat(300), '../../etc/passwd', '__proto__']),
      () => this.pick([null, true, false]),
      () => [],
      () => ({}),
      () => ({ index: this.int(10), generation: this.int(4) }),
      () => ({ index: -1, generation: 1 }),
      () => ({ index: 1, generation: 1, extra: 1 }),
      () => ({ __proto__: { polluted: true } }),
      () => [1, 2, 3],
    ])();
  }

  mutate(request: Record<string, unknown>): Record<string, unknown> {
    const mutated = { ...request };
    const keys = Object.keys(mutated);
    for (let n = 1 + this.int(3); n > 0; n--) {
      const roll = this.random();
      const key = this.pick(keys);
      if (roll < 0.45) mutated[key] = this.value();
      else if (roll < 0.6) delete mutated[key];
      else if (roll < 0.75) mutated[this.pick(['extra', 'data', 'constructor', 'ID', 'op2'])] = this.value();
      else if (roll < 0.9) mutated['op'] = this.pick([...OPS, 'drop', 'exec', '', 'HELLO', 'toString']);
      else mutated['id'] = this.value();
    }
    if (mutated['op'] === 'grow') mutated['size'] = this.pick([-1, 'big', null, 4097, 0]); // a valid grow would really grow the pool
    if (mutated['op'] === 'map') mutated['tracking'] = this.pick(['faults', 7, null]);
    if (mutated['op'] === 'hello' || mutated['op'] === 'close' || mutated['op'] === 'retire') mutated['op'] = 'info'; // retire would end an idle regiond
    return mutated;
  }

  learn(request: Record<string, unknown>, reply: Reply): void {
    if (reply === 'closed' || reply.header.ok !== true) return;
    const result = reply.header.result as Record<string, unknown> | null;
    if (request['op'] === 'create' && typeof request['name'] === 'string') this.names.push(request['name']);
    if (request['op'] === 'open' && result && typeof result === 'object') this.refs.push(result['region'] as { index: number; generation: number });
    if (request['op'] === 'stage' && result && typeof result['staging'] === 'number') this.stagings.push(result['staging']);
  }
}

function hello(id: number, protocol: unknown = PROTOCOL_VERSION): Buffer {
  return encodeFrame({ id, op: 'hello', protocol });
}

test(`protocol fuzz: ${REQUESTS} random and mutated requests leave regiond serving`, { timeout: 180_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
  const poolPath = path.join(base, 'fuzz.pool');
  createPool(poolPath, { size: '16MiB', mode: 'exclusive' }).close();
  const daemon = spawn(process.execPath, [BIN, 'daemon', '-p', poolPath, '--idle-exit', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REGIONS_QUIET: '1' } });
  let out = '';
  let err = '';
  daemon.stdout.on('data', (chunk: Buffer) => void (out += chunk.toString()));
  daemon.stderr.on('data', (chunk: Buffer) => void (err += chunk.toString()));
  const exited = new Promise<void>((resolve) => daemon.on('close', () => resolve()));
  try {
    while (!out.includes('}')) {
      assert.equal(daemon.exitCode, null, `regions daemon exited: ${err}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { socket: socketPath } = JSON.parse(out) as { socket: string };
    assert.equal(socketPath, path.join(base, socketAddress(poolPath).name));
    const counts = await fuzz(socketPath, prng(seed));
    t.diagnostic(`sent ${counts.sent} requests: ${JSON.stringify(counts.kinds)}; replies ok ${counts.ok}, errors ${counts.errors}, connections closed by regiond ${counts.closedByServer}`);
    assert.ok(counts.sent >= REQUESTS, `seed ${seed}`);
    assert.ok(counts.ok > 100 && counts.errors > 1000, `seed ${seed}: the fuzz reached both the kernel and the checks`);
    assert.equal(daemon.exitCode, null, `seed ${seed}: regiond died: ${err}`);
    const stranger = await Raw.open(socketPath);
    stranger.send(hello(1, PROTOCOL_VERSION + 1));
    const refused = await stranger.next(REPLY_WAIT_MS);
    assert.ok(refused !== null && refused !== 'closed');
    assert.equal(refused.header.error?.code, 'PROTOCOL');
    assert.match(String(refused.header.error?.message), new RegExp(`speaks protocol ${PROTOCOL_VERSION}, this client ${PROTOCOL_VERSION + 1}`));
    const pool = openPool(poolPath, { mode: 'auto' });
    assert.equal(pool.mode, 'shared');
    assert.equal(pool.info().server?.pid, daemon.pid, `seed ${seed}: the same regiond still serves`);
    pool.create('after-fuzz', { size: '64KiB' });
    pool.open('after-fuzz').write(0, Uint8Array.of(42));
    assert.equal(pool.open('after-fuzz').read(0, 1)[0], 42);
    const report = pool.check();
    assert.ok(report.ok, `seed ${seed}: fsck after the fuzz: ${JSON.stringify(report.problems.slice(0, 3))}`);
    pool.close();
    assert.doesNotMatch(err, /internal error/, `seed ${seed}: regiond logged an internal error`);
  } finally {
    daemon.kill('SIGTERM');
    const killer = setTimeout(() => daemon.kill('SIGKILL'), 10_000); // a regiond that ignores SIGTERM fails below
    await exited;
    clearTimeout(killer);
  }
  assert.equal(daemon.signalCode, null, 'regiond left on SIGTERM');
});

interface Counts {
  sent: number;
  ok: number;
  errors: number;
  closedByServer: number;
  kinds: Record<string, number>;
}

async function fuzz(socketPath: string, random: () => number): Promise<Counts> {
  const generator = new Generator(random);
  const counts: Counts = { sent: 0, ok: 0, errors: 0, closedByServer: 0, kinds: {} };
  let raw: Raw | null = null;
  const greeted = async (): Promise<Raw> => {
    if (raw && !raw.closed) return raw;
    raw = await Raw.open(socketPath);
    raw.send(hello(0));
    const reply = await raw.next(REPLY_WAIT_MS);
    assert.ok(reply !== null && reply !== 'closed' && reply.header.ok === true, `hello refused: ${JSON.stringify(reply)}`);
    return raw;
  };
  /** Sends one framed request and requires an answer: a reply or a closed connection. */
  const exchange = async (connection: Raw, frame: Uint8Array, what: string): Promise<Reply> => {
    connection.send(frame);
    counts.sent++;
    const reply = await connection.next(REPLY_WAIT_MS);
    assert.ok(reply !== null, `regiond did not answer ${what} within ${REPLY_WAIT_MS} ms`);
    if (reply === 'closed') counts.closedByServer++;
    else if (reply.header.ok === true) counts.ok++;
    else counts.errors++;
    return reply;
  };
  const kinds: [string, number][] = [['mutated', 0.45], ['valid', 0.2], ['garbage', 0.08], ['truncated', 0.08], ['huge', 0.05], ['lying', 0.06], ['version', 0.04], ['no-hello', 0.04]];
  while (counts.sent < REQUESTS) {
    let roll = random();
    const kind = kinds.find(([, p]) => (roll -= p) < 0)?.[0] ?? 'valid';
    counts.kinds[kind] = (counts.kinds[kind] ?? 0) + 1;
    switch (kind) {
      case 'valid':
      case 'mutated': {
        const connection = await greeted();
        const request = kind === 'valid' ? generator.valid() : generator.mutate(generator.valid());
        const reply = await exchange(connection, encodeFrame(request, generator.data(String(request['op']))), `${kind} ${JSON.stringify(request).slice(0, 200)}`);
        if (reply !== 'closed' && typeof request['id'] === 'number' && Number.isSafeInteger(request['id']) && request['id'] >= 0) {
          assert.equal(reply.header.id, JSON.parse(JSON.stringify(request['id'])), `the reply names its request: ${JSON.stringify(request).slice(0, 200)}`); // -0 travels as 0
        }
        generator.learn(request, reply);
        break;
      }
      case 'garbage': {
        const connection = await greeted();
        connection.send(Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256))));
        counts.sent++;
        await connection.next(5); // a reply, a close, or regiond waiting for the rest of a "frame"
        connection.destroy();
        break;
      }
      case 'truncated': {
        const connection = await greeted();
        const frame = encodeFrame(generator.valid(), new Uint8Array(100));
        connection.send(frame.subarray(0, Math.floor(random() * frame.length)));
        counts.sent++;
        connection.destroy();
        break;
      }
      case 'huge': {
        const connection = await greeted();
        const frame = Buffer.alloc(8);
        frame.writeUInt32LE(random() < 0.5 ? 0xffffffff : (2 << 20) + Math.floor(random() * 2 ** 30), 0);
        const reply = await exchange(connection, frame, 'a huge length');
        assert.ok(reply !== 'closed' ? reply.header.error?.code === 'PROTOCOL' : true);
        assert.equal(await connection.next(REPLY_WAIT_MS), 'closed', 'an oversized frame ends the connection');
        break;
      }
      case 'lying': {
        const connection = await greeted();
        const json = Buffer.from(random() < 0.3 ? '{"id":1,' : random() < 0.5 ? '[1,2]' : '\u00ff\u00fe"x"');
        const frame = Buffer.alloc(8 + json.length);
        frame.writeUInt32LE(4 + json.length, 0);
        frame.writeUInt32LE(random() < 0.5 ? json.length + 1 + Math.floor(random() * 1000) : json.length, 4);
        json.copy(frame, 8);
        const reply = await exchange(connection, frame, 'a lying header');
        assert.ok(reply === 'closed' || reply.header.ok === false);
        break;
      }
      case 'version': {
        const connection = await Raw.open(socketPath);
        let version = random() < 0.7 ? PROTOCOL_VERSION + 1 + Math.floor(random() * 5) : generator.value();
        if (version === PROTOCOL_VERSION) version = 0;
        const reply = await exchange(connection, hello(1, version), 'a wrong version');
        assert.ok(reply !== 'closed' && reply.header.ok === false, 'a wrong version is refused with a reply');
        assert.ok(['PROTOCOL', 'INVALID'].includes(String(reply.header.error?.code)));
        assert.equal(await connection.next(REPLY_WAIT_MS), 'closed');
        break;
      }
      case 'no-hello': {
        const connection = await Raw.open(socketPath);
        const reply = await exchange(connection, encodeFrame(generator.valid()), 'a request before hello');
        assert.ok(reply !== 'closed' && reply.header.error?.code === 'PROTOCOL');
        assert.equal(await connection.next(REPLY_WAIT_MS), 'closed');
        break;
      }
    }
  }
  (raw as Raw | null)?.destroy();
  return counts;
}

test('FrameReader: frames that share a chunk, or span chunks, come out one payload each', () => {
  const frames = [encodeFrame({ id: 1, op: 'pmsync' }), encodeFrame({ id: 2, op: 'write' }, Uint8Array.of(9, 8, 7)), encodeFrame({ id: 3 })];
  const stream = Buffer.concat(frames);
  for (const cut of [stream.length, 5, frames[0]?.length ?? 0, 30]) {
    const reader = new FrameReader(1 << 20);
    const payloads = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
    assert.equal(payloads.length, 3, `cut at ${cut}`);
    const decoded = payloads.map((payload) => decodePayload(payload));
    assert.deepEqual(decoded.map(({ header }) => (header as { id: number }).id), [1, 2, 3], `cut at ${cut}`);
    assert.deepEqual([...(decoded[1]?.data ?? [])], [9, 8, 7], `cut at ${cut}: the data is the frame's own`);
    assert.equal(decoded[0]?.data.length, 0, `cut at ${cut}: nothing of the next frame`);
    assert.equal(reader.partial, false);
  }
});

