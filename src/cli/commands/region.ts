// Region commands: create, ls, stat, rm, mv, resize, chmod. Each opens the pool, makes one API call,
// prints its result.

import type { Command } from 'commander';
import { formatSize } from '../../util/size.js';
import { act, globalsOf, octalArg, sizeArg, withCommonOptions, withLook, withPool } from '../context.js';
import { displayName, emit, octal, regionLines, regionTable } from '../output.js';

export function registerRegionCommands(program: Command): void {
  // --mode here is the region's permission bits; the pool mode goes before the command name.
  withCommonOptions(program.command('create').argument('<name>').description('create a region'), { poolMode: false })
    .requiredOption('--size <size>', 'region size, e.g. 64MiB', sizeArg('region size', true))
    .option('--mode <octal>', 'permission bits (default 0600)', octalArg)
    .action(act(create));
  withCommonOptions(program.command('ls').description('list the regions')).action(act(list));
  withCommonOptions(program.command('stat').argument('<name>').description("show a region's attributes")).action(act(stat));
  withCommonOptions(program.command('rm').argument('<name>').description('remove a region')).action(act(remove));
  withCommonOptions(program.command('mv').argument('<old>').argument('<new>').description('rename a region')).action(act(rename));
  withCommonOptions(program.command('resize').argument('<name>').description('change the size of a region'))
    .requiredOption('--size <size>', 'new region size', sizeArg('region size', true))
    .action(act(resize));
  const chmodCommand = program.command('chmod').argument('<name>')
    .argument('<mode>', 'permission bits in octal, e.g. 0640', octalArg)
    .description("change a region's permission bits (its owner or root)");
  withCommonOptions(chmodCommand)
    .action(act(chmod));
}

function create(cmd: Command, name: string): void {
  const globals = globalsOf(cmd);
  const { size, mode } = cmd.opts<{ size: number; mode?: number }>();
  const info = withPool(globals, (pool) => pool.create(name, mode === undefined ? { size } : { size, mode }));
  emit(globals, info, () => [`created region ${info.name}: ${formatSize(info.sizeBytes)}, mode ${octal(info.mode)}`]);
}

async function list(cmd: Command): Promise<void> {
  const globals = globalsOf(cmd);
  const regions = await withLook(globals, (pool) => pool.list());
  emit(globals, regions, () => (regions.length === 0 ? ['no regions'] : regionTable(regions)));
}

async function stat(cmd: Command, name: string): Promise<void> {
  const globals = globalsOf(cmd);
  const info = await withLook(globals, (pool) => pool.stat(name));
  emit(globals, info, () => regionLines(info));
}

/** --json prints the region as it was when it was removed. */
function remove(cmd: Command, name: string): void {
  const globals = globalsOf(cmd);
  const removed = withPool(globals, (pool) => {
    const info = pool.stat(name);
    pool.remove(name);
    return info;
  });
  emit(globals, removed, () => [`removed region ${displayName(name)}`]);
}

/** This and the commands below print (with --json) the region as the change left it. */
function rename(cmd: Command, from: string, to: string): void {
  const globals = globalsOf(cmd);
  const info = withPool(globals, (pool) => {
    pool.rename(from, to);
    return pool.stat(to);
  });
  emit(globals, info, () => [`renamed region ${displayName(from)} to ${displayName(to)}`]);
}

function chmod(cmd: Command, name: string, mode: number): void {
  const globals = globalsOf(cmd);
  const info = withPool(globals, (pool) => {
    pool.chmod(name, mode);
    return pool.stat(name);
  });
  emit(globals, info, () => [`region ${displayName(name)}: mode ${octal(info.mode)}`]);
}

function resize(cmd: Command, name: string): void {
  const globals = globalsOf(cmd);
  const { size } = cmd.opts<{ size: number }>();
  const info = withPool(globals, (pool) => {
    pool.resize(name, size);
    return pool.stat(name);
  });
  emit(globals, info, () => [`resized region ${displayName(name)} to ${formatSize(info.sizeBytes)}`]);
}
