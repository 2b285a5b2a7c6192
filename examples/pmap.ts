// An ordered, persistent map of users with PMap: each command is one process, and the map
// is still there for the next one. `import` puts every line of a file in one batch: all of
// them are committed, or (if one is malformed) none.
//
//   node dist/examples/pmap.js POOL put NAME JSON        e.g. put ada '{"born":1815}'
//   node dist/examples/pmap.js POOL get NAME             prints the JSON (exit 1 if absent)
//   node dist/examples/pmap.js POOL delete NAME
//   node dist/examples/pmap.js POOL list [FROM [TO]]     NAME JSON lines in name order
//   node dist/examples/pmap.js POOL import FILE          lines NAME JSON, one batch
//
// It opens the pool in shared mode when a regiond serves it and exclusively otherwise
// ('auto'); the map works the same in both, and several processes may use it at once.

import fs from 'node:fs';
import path from 'node:path';
import { createPool, openPool, PMap, RegionError, type Pool } from 'region-system';

function open(poolPath: string): Pool {
  if (fs.existsSync(poolPath)) return openPool(poolPath, { mode: 'auto' });
  fs.mkdirSync(path.dirname(poolPath), { recursive: true });
  return createPool(poolPath, { size: '256MiB', mode: 'exclusive' });
}

function parse(json: string, line: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    throw new RegionError('INVALID', `"${line}" does not end in JSON`);
  }
}

function run(users: PMap, command: string, args: string[]): number {
  const [name = '', ...rest] = args;
  switch (command) {
    case 'put':
      users.put(name, parse(rest.join(' '), args.join(' ')));
      return 0;
    case 'get': {
      const user = users.get(name);
      if (user === undefined) return 1;
      console.log(JSON.stringify(user));
      return 0;
    }
    case 'delete':
      return users.delete(name) ? 0 : 1;
    case 'list':
      for (const [key, user] of users.range({ start: args[0], end: args[1] })) {
        console.log(`${String(key)} ${JSON.stringify(user)}`);
      }
      return 0;
    case 'import': {
      const lines = fs.readFileSync(name, 'utf8').split('\n').filter((line) => line.trim() !== '');
      users.batch(() => {
        for (const line of lines) {
          const space = line.indexOf(' ');
          users.put(line.slice(0, space), parse(line.slice(space + 1), line));
        }
      });
      console.log(`imported ${lines.length} users`);
      return 0;
    }
    default:
      console.error('usage: pmap.js POOL put NAME JSON | get NAME | delete NAME | list [FROM [TO]] | import FILE');
      return 2;
  }
}

const [poolPath, command = '', ...args] = process.argv.slice(2);
if (poolPath === undefined) {
  console.error('usage: pmap.js POOL put NAME JSON | get NAME | delete NAME | list [FROM [TO]] | import FILE');
  process.exit(2);
}
const pool = open(poolPath);
try {
  const users = PMap.open(pool, 'users', { create: true });
  process.exitCode = run(users, command, args);
  users.close();
} catch (error) {
  console.error(`pmap: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  pool.close();
}
