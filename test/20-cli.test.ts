// The `regions` CLI (src/cli), run as a user runs it: bin/regions.js in a child process, in a
// temporary directory. Covers every command's round trip with --json, binary-safe write/read,
// fsck on healthy and damaged pools, the exit codes (0 ok, 1 error, 2 usage), a pool held by
// another process, pools on tmpfs and on an ordinary file system, crashtest (the demo: test/52-demo.test.ts).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CheckReport, PoolInfo, RegionInfo, SyncStats } from '../src/api.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
const root = path.resolve(here, '..', '..');
const BIN = path.join(root, 'bin', 'regions.js');
const KiB = 1024;
const MiB = 1024 * KiB;
const TMPFS_MAGIC = 0x01021994;

const isTmpfs = (directory: string): boolean => fs.statfsSync(directory).type === TMPFS_MAGIC;
const diskDir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-cli-'));
const shmDir = fs.existsSync('/dev/shm') && isTmpfs('/dev/shm') ? fs.mkdtempSync('/dev/shm/regions-cli-') : undefined;
after(() => {
  fs.rmSync(diskDir, { recursive: true, force: true });
  if (shmDir !== undefined) fs.rmSync(shmDir, { recursive: true, force: true });
});
const places = [
  { label: 'tmpfs (/dev/shm)', dir: shmDir ?? diskDir, skip: shmDir === undefined ? 'no tmpfs at /dev/shm on this machine' : false },
  { label: 'an ordinary file system', dir: diskDir, skip: isTmpfs(diskDir) ? `os.tmpdir() (${os.tmpdir()}) is tmpfs, not an ordinary file system` : false },
];

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

interface RunOptions {
  cwd?: string;
  input?: Uint8Array | string;
  env?: Record<string, string>;
}

/** The caller's REGIONS_* settings must not leak in; CI=true keeps progress bars off. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, REGIONS_QUIET: '1', CI: 'true' };
  for (const key of ['REGIONS_POOL', 'REGIONS_DEBUG', 'REGIONS_SEED']) delete env[key];
  return { ...env, ...extra };
}

function regions(args: string[], options: RunOptions = {}): Run {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? diskDir,
    input: options.input ?? '',
    env: childEnv(options.env),
    maxBuffer: 256 * MiB,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

function ok(args: string[], options?: RunOptions): Run {
  const run = regions(args, options);
  assert.equal(run.status, 0, `regions ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return run;
}

function json<T>(args: string[], options?: RunOptions): T {
  return JSON.parse(ok([...args, '--json'], options).stdout.toString()) as T;
}

/**
 * Exit status as expected, exactly one `regions: ` line on stderr, and nothing on stdout but,
 * with --json, the error document saying the same.
 */
function fails(args: string[], status: number, options?: RunOptions): string {
  const run = regions(args, options);
  assert.equal(run.status, status, `regions ${args.join(' ')}: ${run.stderr}`);
  if (args.includes('--json')) {
    type ErrorDocument = { error: { code: string; message: string; exitCode: number } };
    const { error } = JSON.parse(run.stdout.toString()) as ErrorDocument;
    assert.deepEqual([error.exitCode, `regions: ${error.message}\n`], [status, run.stderr]);
    assert.match(error.code, status === 2 ? /^USAGE$/ : /^[A-Z_]+$/);
  } else {
    assert.equal(run.stdout.length, 0, 'nothing on stdout');
  }
  const lines = run.stderr.split('\n').filter((line) => line.length > 0);
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0]!, /^regions: /);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  return lines[0]!;
}

let poolCount = 0;
function newPool(dir: string = diskDir, size = '4MiB'): string {
  const poolPath = path.join(dir, `p${poolCount++}.pool`);
  ok(['-p', poolPath, 'mkpool', '--size', size]);
  return poolPath;
}

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, offset);
  byte[0] = byte[0]! ^ 0xff;
  fs.writeSync(fd, byte, 0, 1, offset);
  fs.closeSync(fd);
}

test('--version prints the version in package.json', () => {
  const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(ok(['--version']).stdout.toString().trim(), version);
});

test('--help and help exit 0 and list the commands that exist', () => {
  for (const args of [['--help'], ['help'], ['create', '--help']]) {
    const text = ok(args).stdout.toString();
    assert.match(text, /Usage: regions/);
  }
  const text = ok(['help']).stdout.toString();
  const commands = ['mkpool', 'info', 'create', 'ls', 'stat', 'rm', 'mv', 'resize', 'chmod', 'grow', 'set-access'];
  for (const name of [...commands, 'write', 'read', 'fsck', 'crashtest', 'demo', 'bench']) {
    assert.match(text, new RegExp(`^  ${name} `, 'm'), name);
  }
});

for (const place of places) {
  test(`mkpool, create, ls, stat, mv, resize, rm, info, grow on ${place.label}`, { skip: place.skip }, () => {
    const poolPath = path.join(place.dir, `round-trip-${poolCount++}.pool`);
    const p = ['-p', poolPath];
    const made = json<PoolInfo>([...p, 'mkpool', '--size', '4MiB']);
    assert.equal(made.capacityBytes, 4 * MiB);
    assert.equal(made.path, path.resolve(poolPath));
    const a = json<RegionInfo>([...p, 'create', 'a', '--size', '64KiB', '--mode', '0640']);
    assert.deepEqual([a.name, a.sizeBytes, a.mode, a.epoch], ['a', 64 * KiB, '0640', 0], 'modes print in octal');
    json<RegionInfo>([...p, 'create', 'b', '--size', '10000']);
    assert.deepEqual(json<RegionInfo[]>([...p, 'ls']).map((r) => r.name).sort(), ['a', 'b']);
    assert.deepEqual(json<RegionInfo>([...p, 'stat', 'a']), a);
    const renamed = json<RegionInfo>([...p, 'mv', 'a', 'renamed']); // each change prints what it made
    assert.deepEqual([renamed.name, renamed.id, renamed.sizeBytes], ['renamed', a.id, 64 * KiB]);
    assert.equal(json<RegionInfo>([...p, 'resize', 'renamed', '--size', '1MiB']).sizeBytes, MiB);
    assert.equal(json<RegionInfo>([...p, 'stat', 'renamed']).sizeBytes, MiB);
    assert.equal(json<RegionInfo>([...p, 'rm', 'b']).name, 'b', 'rm prints the region it removed');
    assert.deepEqual(json<RegionInfo[]>([...p, 'ls']).map((r) => r.name), ['renamed']);
    assert.equal(json<PoolInfo>([...p, 'grow', '--size', '8MiB']).capacityBytes, 8 * MiB);
    const info = json<PoolInfo>([...p, 'info']);
    assert.deepEqual([info.capacityBytes, info.regions, info.mode], [8 * MiB, 1, 'exclusive']);
    assert.match(ok([...p, 'ls']).stdout.toString(), /^NAME +SIZE.*\nrenamed +1 MiB/);
    assert.match(ok([...p, 'info']).stdout.toString(), /capacity +8 MiB/);
  });

  test(`write then read back, binary-safe, on ${place.label}`, { skip: place.skip }, () => {
    const poolPath = newPool(place.dir);
    const p = ['-p', poolPath];
    ok([...p, 'create', 'r', '--size', '64KiB']);
    const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i & 0xff)); // every byte value, NUL and \n included
    const stats = json<SyncStats>([...p, 'write', 'r', '--offset', '4000'], { input: bytes });
    assert.equal(stats.pages, 2, 'the write straddles a page boundary');
    assert.ok(stats.epoch > 0 && stats.fences > 0);
    assert.deepEqual(ok([...p, 'read', 'r', '--offset', '4000', '--length', '512']).stdout, bytes);
    assert.deepEqual(ok([...p, 'read', 'r', '--offset', '4010', '--length', '10']).stdout, bytes.subarray(10, 20));
    const whole = ok([...p, 'read', 'r']).stdout;
    assert.equal(whole.length, 64 * KiB);
    assert.deepEqual(whole.subarray(4000, 4512), bytes);
    assert.ok(whole.subarray(0, 4000).every((b) => b === 0), 'bytes never written read as zeros');
    const viaJson = json<{ base64: string; length: number }>([...p, 'read', 'r', '--offset', '4KiB', '--length', '100']);
    assert.deepEqual(Buffer.from(viaJson.base64, 'base64'), bytes.subarray(96, 196));
  });
}

test('write of more than one page is one commit, and read streams it back', () => {
  const poolPath = newPool(diskDir, '16MiB');
  const p = ['-p', poolPath];
  ok([...p, 'create', 'big', '--size', '1MiB']);
  const bytes = randomBytes(300 * KiB + 7);
  const stats = json<SyncStats>([...p, 'write', 'big', '--offset', '64KiB'], { input: bytes });
  assert.equal(stats.pages, 76, 'ceil((300 KiB + 7) / 4 KiB) pages in one pmsync');
  assert.equal(json<RegionInfo>([...p, 'stat', 'big']).epoch, stats.epoch);
  assert.deepEqual(ok([...p, 'read', 'big', '--offset', '64KiB', '--length', String(bytes.length)]).stdout, bytes);
  assert.match(ok([...p, 'write', 'big'], { input: 'x' }).stdout.toString(), /^wrote 1 B to big at offset 0; epoch \d+: 1 page,/);
});

test('write or read outside the region fails before touching it', () => {
  const poolPath = newPool();
  const p = ['-p', poolPath];
  ok([...p, 'create', 'small', '--size', '8KiB']);
  assert.match(fails([...p, 'write', 'small', '--offset', '8000'], 1, { input: randomBytes(500) }), /outside the region/);
  assert.equal(json<RegionInfo>([...p, 'stat', 'small']).epoch, 0, 'nothing committed');
  assert.match(fails([...p, 'read', 'small', '--offset', '4KiB', '--length', '8KiB'], 1), /outside region "small"/);
  assert.match(fails([...p, 'read', 'small', '--offset', '9000'], 1), /outside/);
});

test('the pool comes from -p, else $REGIONS_POOL, else ./regions.pool', () => {
  const cwd = fs.mkdtempSync(path.join(diskDir, 'cwd-'));
  ok(['mkpool', '--size', '1MiB'], { cwd });
  assert.ok(fs.existsSync(path.join(cwd, 'regions.pool')));
  ok(['mkpool', '--size', '1MiB'], { cwd, env: { REGIONS_POOL: 'env.pool' } });
  ok(['create', 'x', '--size', '4096'], { cwd, env: { REGIONS_POOL: 'env.pool' } });
  assert.deepEqual(json<RegionInfo[]>(['ls'], { cwd }), [], './regions.pool is untouched');
  assert.equal(json<RegionInfo[]>(['-p', 'env.pool', 'ls'], { cwd }).length, 1);
  assert.equal(json<RegionInfo[]>(['ls', '-p', path.join(cwd, 'env.pool')]).length, 1, '-p after the command too');
});

test('fsck of a healthy pool: exit 0, report ok', () => {
  const poolPath = newPool();
  ok(['-p', poolPath, 'create', 'a', '--size', '64KiB']);
  ok(['-p', poolPath, 'write', 'a'], { input: randomBytes(10_000) });
  const report = json<CheckReport>(['-p', poolPath, 'fsck']);
  assert.deepEqual([report.ok, report.problems, report.regionsChecked], [true, [], 1]);
  assert.match(ok(['-p', poolPath, 'fsck']).stdout.toString(), /: ok \(0 problems/);
});

test('fsck reports a flipped byte in superblock copy 0, and --repair fixes it', () => {
  const poolPath = newPool();
  flipByte(poolPath, 30); // the pool-size field, inside the checksummed bytes
  const run = regions(['-p', poolPath, 'fsck', '--json']);
  assert.equal(run.status, 1, run.stderr);
  const report = JSON.parse(run.stdout.toString()) as CheckReport;
  assert.equal(report.ok, false);
  assert.deepEqual(report.problems.map((x) => [x.structure, x.offset, x.repairable, x.repaired]), [['superblock copy 0', 0, true, false]]);
  assert.match(regions(['-p', poolPath, 'fsck']).stdout.toString(), /^superblock copy 0 at offset 0: .+ \(repairable with --repair\)$/m);
  const repaired = json<CheckReport>(['-p', poolPath, 'fsck', '--repair']);
  assert.deepEqual([repaired.ok, repaired.problems[0]?.repaired], [true, true]);
  assert.deepEqual(json<CheckReport>(['-p', poolPath, 'fsck']).problems, [], 'nothing left to repair');
});

test('a flipped byte in a region-table slot: ls fails naming the offset, fsck exit 1', () => {
  const poolPath = newPool();
  ok(['-p', poolPath, 'create', 'victim-region', '--size', '64KiB']);
  const image = fs.readFileSync(poolPath);
  const nameAt = image.indexOf('victim-region\0');
  const slot = nameAt - 128; // the name is at byte 128 of its 512-byte slot (src/format/slot.ts)
  assert.ok(nameAt > 0 && slot % 512 === 0, 'found the slot');
  flipByte(poolPath, slot + 8); // the size field
  const line = fails(['-p', poolPath, 'ls'], 1);
  assert.match(line, new RegExp(`slot.*offset ${slot}\\b.*fsck`));
  const run = regions(['-p', poolPath, 'fsck', '--json']);
  assert.equal(run.status, 1, run.stderr);
  assert.ok((JSON.parse(run.stdout.toString()) as CheckReport).problems.some((x) => x.offset === slot && x.repairable === false));
  assert.equal(regions(['-p', poolPath, 'fsck', '--repair']).status, 1, 'a slot is not repaired by guessing');
});

test('errors: one stderr line, exit 1; usage errors exit 2', () => {
  const poolPath = newPool();
  const p = ['-p', poolPath];
  assert.match(fails([...p, 'stat', 'nope'], 1), /^regions: .*"nope"/);
  fails([...p, 'stat', 'nope', '--json'], 1); // --json: the line on stderr, and an error document on stdout
  assert.match(fails(['-p', path.join(diskDir, 'missing.pool'), 'ls'], 1), /missing\.pool does not exist/);
  assert.match(fails([...p, 'create', 'a', '--size', '1TiB'], 1), /exceeds the pool's capacity/);
  fails([...p, 'create', 'a', '--size', '4096', '--mode', '0999'], 2);
  // A size that does not parse is a bad option value, found by the CLI before any call: exit 2.
  assert.match(fails(['-p', path.join(diskDir, 'bad.pool'), 'mkpool', '--size', '12XB'], 2), /12XB/);
  // A well-formed size the API rejects is an error of the operation: exit 1.
  assert.match(fails(['-p', path.join(diskDir, 'bad.pool'), 'mkpool', '--size', '1000'], 1), /not a multiple of 4096/);
  assert.equal(fs.existsSync(path.join(diskDir, 'bad.pool')), false);
  assert.match(fails(['frobnicate'], 2), /unknown command 'frobnicate'/);
  assert.match(fails([...p, 'stat'], 2), /missing required argument 'name'/);
  assert.match(fails([...p, 'resize', 'a'], 2), /--size/);
  fails([...p, 'ls', '--bogus'], 2);
  fails(['--mode', 'sometimes', 'ls'], 2);
  assert.equal(regions([]).status, 2, 'no command');
  const debug = regions([...p, 'stat', 'nope'], { env: { REGIONS_DEBUG: '1' } });
  assert.match(debug.stderr, /\n\s+at /, 'REGIONS_DEBUG=1 shows the stack');
});

test('mkpool --socket-mode --group, set-access and info: who may connect to regiond is a pool setting', () => {
  const poolPath = path.join(diskDir, `access-${poolCount++}.pool`);
  const p = ['-p', poolPath];
  const made = json<PoolInfo>([...p, 'mkpool', '--size', '4MiB', '--socket-mode', '0660', '--group', '0']);
  assert.deepEqual(made.access, { socketMode: '0660', group: 0 });
  assert.equal(fs.statSync(poolPath).mode & 0o777, 0o600, 'the pool file is its owner\'s only, whatever the setting');
  assert.match(ok([...p, 'info']).stdout.toString(), /^access +regiond admits socket mode 0660, group 0( \(\S+\))?$/m);
  assert.deepEqual(json([...p, 'set-access', '--socket-mode', '0644', '--no-group']), { socketMode: '0644', group: null });
  assert.deepEqual(json<PoolInfo>([...p, 'info']).access, { socketMode: '0644', group: null }, 'kept in the pool');
  assert.match(fails([...p, 'set-access', '--socket-mode', '0640'], 1), /names no group/);
  assert.match(fails([...p, 'set-access', '--socket-mode', '0700'], 1), /0600 to 0666/);
  fails([...p, 'set-access', '--socket-mode', 'rw'], 2);
  assert.match(fails([...p, 'set-access', '--group', 'no-such-group-here'], 1), /no group named "no-such-group-here"/);
  assert.deepEqual(json<PoolInfo>([...p, 'info']).access, { socketMode: '0644', group: null }, 'refused changes changed nothing');
});

test('a pool held by another process: regions names its pid', async () => {
  const poolPath = newPool();
  const child = spawn(process.execPath, [path.join(here, 'fixtures', 'cli-pool-holder.js'), poolPath], { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv() });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const first = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
      child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    assert.equal(first, `held ${child.pid}`);
    const line = fails(['-p', poolPath, 'ls'], 1);
    assert.match(line, new RegExp(`^regions: pool .*${path.basename(poolPath)} is held exclusively by pid ${child.pid}\\b`));
    fails(['-p', poolPath, '--mode', 'exclusive', 'info', '--json'], 1);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  ok(['-p', poolPath, 'ls'], {}); // the holder's death released the pool
});

test('crashtest --ops metadata --json: every crash image recovers', () => {
  const report = json<{ operations: number; images: number; failures: number; seed: number }>(['crashtest', '--ops', 'metadata', '--seed', '7', '--samples', '8']);
  assert.deepEqual(Object.keys(report).sort(), ['failures', 'images', 'operations', 'seed']);
  assert.ok(report.operations >= 11 && report.images > 0);
  assert.deepEqual([report.failures, report.seed], [0, 7]);
});

test('crashtest: the total of operations is the sum of its rows', () => {
  const out = ok(['crashtest', '--ops', 'pmsync', '--seed', '7', '--samples', '2'], {}).stdout.toString();
  const rows = out.split('\n').filter((line) => /^(ok|FAIL)\s/.test(line));
  const perRow = rows.map((line) => Number(/(\d+) operations?\b/.exec(line)?.[1]));
  const summary = /^(\d+) scenarios?, (\d+) operations?, /m.exec(out);
  assert.ok(summary, out);
  assert.equal(Number(summary[1]), rows.length, 'one row per scenario');
  assert.equal(Number(summary[2]), perRow.reduce((a, b) => a + b, 0), 'the operations of the rows add up to the total');
  assert.ok(perRow.some((n) => n > 1), 'a scenario of several operations shows them');
});
