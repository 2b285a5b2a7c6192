// examples/level-todo.ts run as a user would run it (child processes of the compiled
// dist/examples/level-todo.js): items added, one marked done, the lists, and the errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const example = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'level-todo.js');

test('level-todo: add, done, list and list open, across runs', () => {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-todo-'));
  try {
    const poolPath = path.join(dir, 'todo.pool');
    const todo = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const env = { ...process.env, REGIONS_QUIET: '1' };
      return spawnSync(process.execPath, [example, poolPath, ...args], { encoding: 'utf8', env });
    };
    assert.equal(todo('add', 'buy', 'milk').stdout, '000001\n');
    assert.equal(todo('add', 'write the report').stdout, '000002\n');
    assert.equal(todo('add', 'call Ada').stdout, '000003\n');
    assert.equal(todo('done', '000002').status, 0);
    assert.equal(todo('list').stdout, '000001 [ ] buy milk\n000002 [x] write the report\n000003 [ ] call Ada\n');
    assert.equal(todo('list', 'open').stdout, '000001 [ ] buy milk\n000003 [ ] call Ada\n');
    const missing = todo('done', '000009');
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, 'level-todo: no item 000009\n');
    assert.match(todo('remove', '1').stderr, /^level-todo: usage: /);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
