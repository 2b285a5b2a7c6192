// Data commands: `write` imports all of stdin into a region in one atomic commit (staged in
// the kernel as it arrives, one pmsync); `read` copies one snapshot of committed bytes to
// stdout in pieces. Neither holds a large input or region in memory at once.

import { once } from 'node:events';
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Pool, Region, SyncStats } from '../../api.js';
import { openPool } from '../../client/pool.js';
import { RegionHandle } from '../../client/region_handle.js';
import type { StagedWrite } from '../../client/staged_write.js';
import { DATA_CHUNK_BYTES } from '../../constants.js';
import { assert } from '../../util/assert.js';
import { RegionError } from '../../errors.js';
import { formatSize } from '../../util/size.js';
import { act, globalsOf, type Globals, sizeArg, withCommonOptions, withLook } from '../context.js';
import { emit, syncLine } from '../output.js';
import { startProgress } from '../../util/progress.js';

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
  const stats = await withPoolAsync(globals, (pool) => importStdin(handleOf(pool.open(name)), offset, globals.json));
  emit(globals, stats.sync, () => [`wrote ${formatSize(stats.length)} to ${name} at offset ${offset}; ${syncLine(stats.sync)}`]);
}

/**
 * stdin into the region in one atomic commit, without holding all of it: a file (its length
 * known) is staged in the kernel as it is read; a pipe is read first (its length is needed
 * to stage), then staged piece by piece, each piece let go once sent. The bar covers the
 * reading, the staging and the commit.
 */
async function importStdin(region: RegionHandle, offset: number, json: boolean): Promise<Imported> {
  const stat = fs.fstatSync(0);
  const known = stat.isFile() ? stat.size : undefined;
  const streamed = known !== undefined && known > DATA_CHUNK_BYTES;
  const total = known === undefined ? {} : { total: known };
  const progress = startProgress({ label: `writing ${region.name}`, json, unit: 'bytes', ...total });
  let staged: StagedWrite | undefined;
  try {
    const pieces: (Buffer | undefined)[] = [];
    let length = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (streamed) (staged ??= region.stage(offset, known)).append(chunk);
      else pieces.push(chunk);
      progress.update(length);
    }
    if (known !== undefined && length !== known) {
      const why = `stdin ended after ${length} of its ${known} bytes (the file changed while it was read)`;
      throw new RegionError('INVALID', `${why}; nothing was written`);
    }
    if (staged === undefined && length <= DATA_CHUNK_BYTES) {
      return { length, sync: region.write(offset, Buffer.concat(pieces as Buffer[], length)) };
    }
    staged ??= region.stage(offset, length);
    if (pieces.length > 0) progress.status('staging');
    for (let i = 0; i < pieces.length; i++) {
      staged.append(pieces[i] ?? Buffer.alloc(0));
      pieces[i] = undefined;
    }
    progress.status('committing (one pmsync)');
    return { length, sync: staged.commit() };
  } catch (error) {
    staged?.abort();
    throw error;
  } finally {
    progress.stop();
  }
}

interface Imported {
  length: number;
  sync: SyncStats;
}

async function read(cmd: Command, name: string): Promise<void> {
  const globals = globalsOf(cmd);
  const { offset = 0, length } = cmd.opts<{ offset?: number; length?: number }>();
  await withLook(globals, async (pool) => {
    const region = handleOf(pool.open(name, { access: 'ro' }));
    if (globals.json) {
      const bytes = region.read(offset, length);
      emit(globals, { name, offset, length: bytes.length, base64: Buffer.from(bytes).toString('base64') }, () => []);
      return;
    }
    const sizeBytes = region.info().sizeBytes;
    const end = length === undefined ? Math.max(offset, sizeBytes) : offset + length;
    // Checked here, not piece by piece, so a bad range prints nothing on stdout.
    if (end > sizeBytes) throw new RegionError('INVALID', `range [${offset}, ${end}) is outside region "${name}" of ${sizeBytes} bytes`);
    const progress = startProgress({ label: `reading ${name}`, json: false, total: end - offset, unit: 'bytes' });
    try {
      let done = 0;
      for (const piece of region.pieces(offset, end - offset)) { // one snapshot, or BUSY
        await writeStdout(piece);
        progress.update((done += piece.length));
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

/** Every region of this library's pools is a RegionHandle; the streaming steps are its own. */
function handleOf(region: Region): RegionHandle {
  assert(region instanceof RegionHandle, 'a region opened by this library is a RegionHandle');
  return region;
}

async function writeStdout(bytes: Uint8Array): Promise<void> {
  if (!process.stdout.write(bytes)) await once(process.stdout, 'drain');
}
