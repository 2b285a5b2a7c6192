// A to-do list on RegionLevel, the abstract-level database in a region: JSON values, two
// sublevels (the items, and an index of the open ones) kept in step by atomic batches.
//   node dist/examples/level-todo.js POOL add TEXT...   prints the new item's id
//   node dist/examples/level-todo.js POOL done ID
//   node dist/examples/level-todo.js POOL list [open]   one line per item, in id order
// The pool is created (16 MiB) if missing, the database's region (8 MiB) too. Processes may run it at once (shared mode), but two
// adds at the same instant could pick the same id: abstract-level has no read-modify-write.

import { RegionLevel } from 'region-system/level';

interface Item {
  text: string;
  done: boolean;
}

async function main(poolPath: string, command: string, args: string[]): Promise<number> {
  const db = new RegionLevel(poolPath, { region: 'todo', poolSize: '16MiB', regionSize: '8MiB' });
  await db.open(); // (a first call would open it too, but would report a failure less plainly)
  const items = db.sublevel<string, Item>('items', { valueEncoding: 'json' });
  const open = db.sublevel<string, string>('open', {});
  try {
    if (command === 'add' && args.length > 0) {
      const last = await items.keys({ reverse: true, limit: 1 }).all();
      const id = String(Number(last[0] ?? 0) + 1).padStart(6, '0'); // fixed width: key order is id order
      await db.batch() // both or neither, durable when it settles
        .put(id, { text: args.join(' '), done: false }, { sublevel: items })
        .put(id, '', { sublevel: open })
        .write();
      console.log(id);
      return 0;
    }
    if (command === 'done' && args.length === 1) {
      const id = args[0] ?? '';
      const item = await items.get(id);
      if (item === undefined) return fail(`no item ${id}`);
      await db.batch().put(id, { ...item, done: true }, { sublevel: items }).del(id, { sublevel: open }).write();
      return 0;
    }
    if (command === 'list' && (args.length === 0 || args[0] === 'open')) {
      const ids = args[0] === 'open' ? await open.keys().all() : await items.keys().all();
      const values = await items.getMany(ids); // one consistent read
      ids.forEach((id, i) => console.log(`${id} ${values[i]?.done === true ? '[x]' : '[ ]'} ${values[i]?.text}`));
      return 0;
    }
    return fail(USAGE);
  } finally {
    await db.close();
  }
}

function fail(message: string): number {
  process.stderr.write(`level-todo: ${message}\n`);
  return 1;
}

const USAGE = 'usage: level-todo POOL add TEXT... | done ID | list [open]';
const [poolPath, command, ...args] = process.argv.slice(2);
process.exitCode = poolPath === undefined || command === undefined ? fail(USAGE) : await main(poolPath, command, args);
