// The commands that only read never write to the pool: `regions info`, `ls`, `stat`, `read`
// and `fsck` without --repair leave the pool file byte for byte as they found it, even when a
// read-write open would repair something (a damaged superblock copy), so fsck still finds
// it; info says what it did not write. fsck of a pool whose two superblock copies are both
// damaged reports each one instead of failing. fsck while regiond serves clients checks
// through regiond, and a repair then says it needs the pool closed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import type { CheckReport, PoolInfo, RegionInfo } from '../src/api.js';
import { base, cleanUp, ClientProcess, newPool, regions, regionsJson } from './fixtures/regiond-harness.js';

after(cleanUp);

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** The superblock's pool-size field, inside the checksummed bytes of copy 0 or 1. */
const superblockByte = (copy: 0 | 1): number => copy * 4096 + 30;

test('info, ls, stat, read and fsck leave a damaged superblock copy for fsck to find', () => {
  const poolPath = newPool('damaged-copy');
  regionsJson(['-p', poolPath, 'create', 'kept', '--size', '8KiB']);
  regionsJson(['-p', poolPath, 'write', 'kept'], Buffer.from('hello'));
  flipByte(poolPath, superblockByte(1));
  const before = fs.readFileSync(poolPath);
  const info = regionsJson<PoolInfo & { unwritten?: string[] }>(['-p', poolPath, 'info']);
  assert.equal(info.regions, 1);
  assert.deepEqual(info.unwritten, ['superblock copy 1 is damaged or stale and was not rewritten']);
  const text = regions(['-p', poolPath, 'info']).stdout.toString();
  assert.match(text, /not written \(info only reads\): superblock copy 1/);
  assert.deepEqual(regionsJson<RegionInfo[]>(['-p', poolPath, 'ls']).map((r) => r.name), ['kept']);
  assert.equal(regionsJson<RegionInfo>(['-p', poolPath, 'stat', 'kept']).sizeBytes, 8192);
  const read = regions(['-p', poolPath, 'read', 'kept', '--length', '5']);
  assert.equal(read.stdout.toString(), 'hello', read.stderr);
  assert.ok(fs.readFileSync(poolPath).equals(before), 'no command wrote to the pool file');
  const check = regions(['-p', poolPath, 'fsck', '--json']);
  assert.equal(check.status, 1, check.stderr);
  const report = JSON.parse(check.stdout.toString()) as CheckReport;
  const found = report.problems.map((p) => [p.structure, p.repairable, p.repaired]);
  assert.deepEqual(found, [['superblock copy 1', true, false]]);
  assert.ok(fs.readFileSync(poolPath).equals(before), 'fsck without --repair wrote nothing');
  assert.equal(regionsJson<CheckReport>(['-p', poolPath, 'fsck', '--repair']).ok, true);
  assert.equal(regionsJson<PoolInfo & { unwritten?: string[] }>(['-p', poolPath, 'info']).unwritten, undefined);
});

test('fsck of a pool whose two superblock copies are damaged reports both, repairs nothing', () => {
  const poolPath = newPool('both-copies');
  flipByte(poolPath, superblockByte(0));
  flipByte(poolPath, superblockByte(1));
  const before = fs.readFileSync(poolPath);
  for (const args of [['fsck'], ['fsck', '--repair']]) {
    const run = regions(['-p', poolPath, ...args, '--json']);
    assert.equal(run.status, 1, run.stderr);
    const report = JSON.parse(run.stdout.toString()) as CheckReport;
    assert.equal(report.ok, false);
    const problems = report.problems.map((p) => [p.structure, p.offset, p.repairable, p.repaired ?? false]);
    assert.deepEqual(problems, [['superblock copy 0', 0, false, false], ['superblock copy 1', 4096, false, false]]);
    assert.match(report.problems[0]!.message, /^checksum mismatch; with no valid copy the pool cannot be mounted/);
  }
  assert.match(regions(['-p', poolPath, 'fsck']).stdout.toString(), /problems remain \(2 problems, 0 regions checked/);
  assert.ok(fs.readFileSync(poolPath).equals(before), 'nothing was repaired by guessing');
  const info = regions(['-p', poolPath, 'info']);
  assert.equal(info.status, 1);
  assert.match(info.stderr, /superblock: no valid copy/);
});

test('fsck while regiond serves a client: checked through regiond; --repair says the pool must be closed', async () => {
  const poolPath = newPool('served');
  const client = new ClientProcess(poolPath, [['create', 'victim-region', 65536], ['hold']]);
  try {
    assert.deepEqual(await client.line(1), { ok: 'holding' });
    const healthy = regionsJson<CheckReport>(['-p', poolPath, 'fsck']);
    assert.deepEqual([healthy.ok, healthy.regionsChecked], [true, 1]);
    const image = fs.readFileSync(poolPath);
    const slot = image.indexOf('victim-region\0') - 128; // the name is at byte 128 of its slot
    assert.ok(slot > 0 && slot % 512 === 0, 'found the slot');
    flipByte(poolPath, slot + 8); // the size field: regiond's check must read PM, not its memory
    const run = regions(['-p', poolPath, 'fsck', '--json']);
    assert.equal(run.status, 1, run.stderr);
    const report = JSON.parse(run.stdout.toString()) as CheckReport;
    assert.ok(report.problems.some((p) => p.offset === slot), JSON.stringify(report.problems));
    const repair = regions(['-p', poolPath, 'fsck', '--repair']);
    assert.equal(repair.status, 1);
    const needsClosed = /^regions: a repair needs pool .*\.pool closed, and regiond \(pid \d+\) serves it to 1 client:/;
    assert.match(repair.stderr, needsClosed);
  } finally {
    client.child.kill('SIGKILL');
    await client.exited;
  }
  assert.ok(path.dirname(poolPath) === base);
});
