// Data commands: `write` imports all of stdin into a region in one atomic commit (one
// region.write, one pmsync); `read` copies committed bytes to stdout in chunks.

import { once } from 'node:events';
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Pool } from '../../api.js';
import { openPool } from '../../client/pool.js';
import { RegionError } from '../../errors.js';
import { formatSize } from '../../util/size.js';
import { act, globalsOf, type Globals, sizeArg, withCommonOptions, withLook } from '../context.js';
import { emit, syncLine } from '../output.js';
import { startProgress } from '../../util/progress.js';

/** Bytes per region.read: bounds the memory `read` uses on a large region. */
export const READ_CHUNK_BYTES = 16 * 2 ** 20;

export function registerDataCommands(program: Command): void {
  withCommonOptions(program.command('write').argument('<name>').description('write stdin into a region at an offset, atomically'))
    .option('--offset <n>', 'byte offset in the region (default 0)', sizeArg('offset'))
    .action(act(write));
  withCommonOptions(program.command('read').argument('<name>').description('copy bytes of a region to stdout'))
    .option('--offset <n>', 'byte offset in the region (default 0)', sizeArg('offset'))
    .option('--length <n>', 'bytes to read (default: to the end of the region)', sizeArg('length'))
    .action(act(read));
}

async function write(cmd: Command, name: string): Promise<void> {
  const globals = globalsOf(cmd);
  const { offset = 0 } = cmd.opts<{ offset?: number }>();
  // The region is opened before stdin is read, so a wrong name fails before a long input.
  const stats = await withPoolAsync(globals, async (pool) => {
    const region = pool.open(name);
    const bytes = await readStdin(globals.json);
    return { length: bytes.length, sync: region.write(offset, bytes) };
  });
  emit(globals, stats.sync, () => [`wrote ${formatSize(stats.length)} to ${name} at offset ${offset}; ${syncLine(stats.sync)}`]);
}

async function read(cmd: Command, name: string): Promise<void> {
  const globals = globalsOf(cmd);
  const { offset = 0, length } = cmd.opts<{ offset?: number; length?: number }>();
  await withLook(globals, async (pool) => {
    const region = pool.open(name, { access: 'ro' });
    if (globals.json) {
      const bytes = region.read(offset, length);
      emit(globals, { name, offset, length: bytes.length, base64: Buffer.from(bytes).toString('base64') }, () => []);
      return;
    }
    const sizeBytes = region.info().sizeBytes;
    const end = length === undefined ? Math.max(offset, sizeBytes) : offset + length;
    // Checked here, not chunk by chunk, so a bad range prints nothing on stdout.
    if (end > sizeBytes) throw new RegionError('INVALID', `range [${offset}, ${end}) is outside region "${name}" of ${sizeBytes} bytes`);
    const progress = startProgress({ label: `reading ${name}`, json: false, total: end - offset, unit: 'bytes' });
    try {
      for (let at = offset; at < end; at += READ_CHUNK_BYTES) {
        await writeStdout(region.read(at, Math.min(READ_CHUNK_BYTES, end - at)));
        progress.update(Math.min(end, at + READ_CHUNK_BYTES) - offset);
      }
    } finally {
      progress.stop();
    }
  });
}

async function withPoolAsync<T>(globals: Globals, use: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = openPool(globals.poolPath, { mode: globals.poolMode });
  try {
    return await use(pool);
  } finally {
    pool.close();
  }
}

/** All of stdin; a bar on a TTY once the input is large (its total known if stdin is a file). */
async function readStdin(json: boolean): Promise<Buffer> {
  const stat = fs.fstatSync(0);
  const total = stat.isFile() ? stat.size : undefined;
  const progress = startProgress({ label: 'reading stdin', json, unit: 'bytes', ...(total === undefined ? {} : { total }) });
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      progress.update(length);
    }
  } finally {
    progress.stop();
  }
  return Buffer.concat(chunks, length);
}

async function writeStdout(bytes: Uint8Array): Promise<void> {
  if (!process.stdout.write(bytes)) await once(process.stdout, 'drain');
}
