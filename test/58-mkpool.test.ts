// `regions mkpool` paper cuts: a size this machine cannot map or track is refused up front
// with a message saying so, and nothing is left behind; a mkpool that fails on the way (the
// file system is too small) leaves nothing either, so the next try is not "already exists";
// 'pmem' on an ordinary file system (not DAX) warns that flushes do not make it durable; and
// info says the persistence is chosen at each open, since the pool does not record it. A
// creator killed on the way leaves a temporary file, which the next mkpool of that pool removes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'regions.js');
const TMPFS_MAGIC = 0x01021994;
const isTmpfs = (directory: string): boolean => fs.statfsSync(directory).type === TMPFS_MAGIC;
const diskDir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-mkpool-'));
const hasShm = fs.existsSync('/dev/shm') && isTmpfs('/dev/shm');
const shmDir = hasShm ? fs.mkdtempSync('/dev/shm/regions-mkpool-') : undefined;
after(() => {
  fs.rmSync(diskDir, { recursive: true, force: true });
  if (shmDir !== undefined) fs.rmSync(shmDir, { recursive: true, force: true });
});

/** The CLI with the caller's REGIONS_* settings left out (quiet unless asked). */
function regions(args: string[], quiet = true): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
  for (const key of Object.keys(env)) if (key.startsWith('REGIONS_')) delete env[key];
  if (quiet) env['REGIONS_QUIET'] = '1';
  const run = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('mkpool --size 1PiB: too large for this machine, and nothing is left behind', () => {
  const poolPath = path.join(diskDir, 'huge.pool');
  for (const attempt of [1, 2]) {
    const run = regions(['-p', poolPath, 'mkpool', '--size', '1PiB']);
    assert.equal(run.status, 1, `attempt ${attempt}: ${run.stderr}`);
    assert.match(run.stderr, /^regions: pool size 1 PiB is too large for this machine: /);
    assert.deepEqual(fs.readdirSync(diskDir), [], 'no pool file, no temporary file');
  }
});

test('mkpool removes the temporary file of a creator that died, and nothing else', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-leftover-'));
  try {
    // pid_max is at most 4194304 (2^22), so no process has this pid.
    const dead = '.left.pool.4194305-0123456789ab.new';
    const live = `.left.pool.${process.pid}-0123456789ab.new`; // a creation under way, as far as mkpool can tell
    const others = ['.left.pool.4194305-xyz.new', '.other.pool.4194305-0123456789ab.new'];
    others.push('left.pool.4194305-0123456789ab.new');
    for (const name of [dead, live, ...others]) fs.writeFileSync(path.join(dir, name), 'half-made');
    const run = regions(['-p', path.join(dir, 'left.pool'), 'mkpool', '--size', '4MiB']);
    assert.equal(run.status, 0, run.stderr);
    const expected = [live, ...others, 'left.pool'].sort();
    assert.deepEqual(fs.readdirSync(dir).sort(), expected, 'only the dead creator\'s file went');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const noTmpfs = shmDir === undefined ? 'no tmpfs at /dev/shm' : false;
test('a mkpool the file system cannot hold fails and leaves nothing; the next one succeeds', { skip: noTmpfs }, () => {
  assert.ok(shmDir !== undefined);
  const stat = fs.statfsSync(shmDir);
  const tooMuch = Math.ceil((2 * stat.bsize * stat.blocks) / 4096) * 4096; // twice the file system
  const poolPath = path.join(shmDir, 'full.pool');
  const run = regions(['-p', poolPath, 'mkpool', '--size', String(tooMuch)]);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /full\.pool.*(ENOSPC|EFBIG)/);
  assert.deepEqual(fs.readdirSync(shmDir), [], 'no pool file, no temporary file');
  assert.equal(regions(['-p', poolPath, 'mkpool', '--size', '4MiB']).status, 0, 'not "already exists"');
});

const onDisk = isTmpfs(diskDir) ? `${os.tmpdir()} is tmpfs, not an ordinary file system` : false;
test("'pmem' on an ordinary file system warns; info says the pool does not record it", { skip: onDisk }, () => {
  const poolPath = path.join(diskDir, 'pmem.pool');
  const made = regions(['-p', poolPath, 'mkpool', '--size', '4MiB', '--persistence', 'pmem'], false);
  assert.equal(made.status, 0, made.stderr);
  assert.match(made.stderr, /^regions: warning: persistence 'pmem' on .*pmem\.pool, which is on an ordinary file/);
  assert.match(made.stderr, /not durable/);
  assert.doesNotMatch(made.stderr, /\.new\b/, 'the warning names the pool, not the temporary file');
  const info = regions(['-p', poolPath, 'info']);
  assert.match(info.stdout, /^persistence +msync \(chosen at each open; the pool does not record mkpool's/m);
  const plain = regions(['-p', path.join(diskDir, 'auto.pool'), 'mkpool', '--size', '4MiB'], false);
  assert.equal(plain.stderr, '', "'auto' chooses msync here and warns of nothing");
});
