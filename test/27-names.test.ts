// Region names: a new name cannot be '/', '.', '..' or hold a control character; a name made
// before that rule still opens, changes mode and is removed, and prints escaped; `ls` keeps its
// columns whatever the longest name; `regions chmod` changes a region's permission bits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RegionManager } from '../src/kernel/region_manager.js';
import { createPool, FileDevice, isRegionError } from '../src/index.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'regions.js');
process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];

function regions(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, CI: 'true' }, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('a new name cannot be "/", ".", ".." or hold a control character; each is INVALID and names why', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-names-'));
  const pool = createPool(path.join(dir, 'n.pool'), { size: '4MiB', mode: 'exclusive' });
  try {
    const cases: [string, RegExp][] = [
      ['a/b', /contains "\/"/], ['.', /is reserved/], ['..', /is reserved/],
      ['bell\u0007', /control character U\+0007/], ['esc\u001b[2J', /U\+001B/], ['c1\u0085', /U\+0085/],
    ];
    for (const [name, why] of cases) {
      const invalid = (e: unknown): boolean => isRegionError(e, 'INVALID') && why.test(e.message);
      assert.throws(() => pool.create(name, { size: 4096 }), invalid, JSON.stringify(name));
    }
    pool.create('fine', { size: 4096 });
    const slash = (e: unknown): boolean => isRegionError(e, 'INVALID') && /contains "\/"/.test(e.message);
    assert.throws(() => pool.rename('fine', 'x/y'), slash);
    pool.create('ok.name..with dots', { size: 4096 }); // dots inside a name are fine
    assert.deepEqual(pool.list().map((r) => r.name), ['fine', 'ok.name..with dots']);
  } finally {
    pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a name made before the rule still works and prints escaped; ls columns stay narrow; chmod', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-names-'));
  const file = path.join(dir, 'old.pool');
  try {
    const device = FileDevice.create(file, { sizeBytes: 4 * 1024 * 1024 });
    RegionManager.format(device);
    const kernel = RegionManager.mount(device, file);
    const owner = { mode: 0o600, uid: process.getuid?.() ?? 0, gid: 0 };
    kernel.create('bell\u0007\u001b[2J', 4096, owner); // as an older build allowed
    kernel.create('n'.repeat(255), 4096, owner);
    device.close();
    const ls = regions(['-p', file, 'ls']);
    assert.equal(ls.status, 0, ls.stderr);
    assert.ok(!/[\u0000-\u001f]/.test(ls.stdout.replace(/\n/g, '')), 'no control character reaches the terminal');
    assert.match(ls.stdout, /bell\\x07\\x1b\[2J/);
    const nameWidth = (line: string): number =>
      (line.includes(' SIZE') ? line.indexOf(' SIZE') : line.search(/ {2,}\d/));
    const widest = Math.max(...ls.stdout.trim().split('\n').map(nameWidth));
    assert.ok(widest <= 44, `the NAME column is ${widest} wide`);
    const chmod = regions(['-p', file, 'chmod', 'bell\u0007\u001b[2J', '0640']);
    assert.equal(chmod.status, 0, chmod.stderr);
    assert.match(chmod.stdout, /mode 0640/);
    const stat = JSON.parse(regions(['-p', file, 'stat', 'bell\u0007\u001b[2J', '--json']).stdout) as { mode: string };
    assert.equal(stat.mode, '0640');
    assert.equal(regions(['-p', file, 'chmod', 'bell\u0007\u001b[2J', '9z']).status, 2, 'a bad mode is a usage error');
    assert.equal(regions(['-p', file, 'rm', 'bell\u0007\u001b[2J']).status, 0, 'and it can be removed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
