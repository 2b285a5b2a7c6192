// reserveSpace: the addon's fallocate, zeros written where the file system refuses it, and
// errno names turned into RegionErrors with the file cut back, whichever way the reservation
// failed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isRegionError } from '../src/errors.js';
import { type Fallocate, reserveSpace } from '../src/pm/reserve.js';

const MiB = 1024 * 1024;

function withFile(body: (fd: number, file: string) => void): void {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-fallocate-'));
  const file = path.join(dir, 'p.pool');
  const fd = fs.openSync(file, 'w+');
  try {
    fs.ftruncateSync(fd, MiB);
    body(fd, file);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function failing(code: string): Fallocate {
  return () => {
    throw Object.assign(new Error(`fallocate: ${code}`), { code, syscall: 'fallocate' });
  };
}

test('the addon fallocate allocates the new range in one call', () => {
  withFile((fd, file) => {
    reserveSpace(fd, file, MiB, 3 * MiB);
    const stat = fs.fstatSync(fd);
    assert.equal(stat.size, 3 * MiB);
    assert.ok(stat.blocks * 512 >= 2 * MiB, 'the new range is allocated');
  });
});

test('a given fallocate is called once for the new range', () => {
  withFile((fd, file) => {
    const calls: [number, number, number][] = [];
    const fake: Fallocate = (f, offset, length) => {
      calls.push([f, offset, length]);
      fs.ftruncateSync(f, offset + length); // what fallocate(2) mode 0 does to the size
    };
    reserveSpace(fd, file, MiB, 3 * MiB, fake);
    assert.deepEqual(calls, [[fd, MiB, 2 * MiB]]);
    assert.equal(fs.fstatSync(fd).size, 3 * MiB);
  });
});

test('where the file system refuses fallocate, zeros are written', () => {
  for (const fallocate of [failing('EOPNOTSUPP'), failing('ENOSYS')]) {
    withFile((fd, file) => {
      reserveSpace(fd, file, MiB, 3 * MiB, fallocate);
      const stat = fs.fstatSync(fd);
      assert.equal(stat.size, 3 * MiB);
      assert.ok(stat.blocks * 512 >= 2 * MiB, 'the new range is allocated');
    });
  }
});

test('a full file system is NO_SPACE, other failures IO or INVALID; the file is cut back', () => {
  const cases = [['ENOSPC', 'NO_SPACE'], ['EDQUOT', 'NO_SPACE'], ['EFBIG', 'INVALID'], ['EIO', 'IO']] as const;
  for (const [code, expected] of cases) {
    withFile((fd, file) => {
      const partial: Fallocate = (f, offset) => {
        fs.ftruncateSync(f, offset + 4096); // a failure part-way may leave the file longer
        failing(code)(f, offset, 0);
      };
      assert.throws(() => reserveSpace(fd, file, MiB, 3 * MiB, partial),
        (e) => isRegionError(e, expected) && e.message.includes(code) && e.message.includes(file));
      assert.equal(fs.fstatSync(fd).size, MiB, `${code}: the file is as it was`);
    });
  }
});
