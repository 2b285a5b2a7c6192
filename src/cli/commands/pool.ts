// Pool commands: mkpool, info, grow, set-access, fsck.

import { type Command, Option } from 'commander';
import { checkPool, createPool } from '../../client/pool.js';
import type { Persistence, PoolAccessOptions } from '../../api.js';
import { setPoolAccess } from '../../client/pool_access.js';
import { formatSize } from '../../util/size.js';
import { act, globalsOf, octalArg, sizeArg, withCommonOptions, withLook, withPool } from '../context.js';
import { accessLine, count, emit, poolLines, problemLine } from '../output.js';

export function registerPoolCommands(program: Command): void {
  withCommonOptions(program.command('mkpool').description('create a pool file'), { poolMode: false })
    .requiredOption('--size <size>', 'pool size, e.g. 64MiB', sizeArg('pool size', true))
    .addOption(new Option('--persistence <how>', 'how stores are made durable').choices(['pmem', 'msync', 'auto']).default('auto'))
    .option('--socket-mode <octal>', "who may connect to the pool's regiond: its socket's mode, 0600 (default, the owner only) to 0666", octalArg)
    .option('--group <group>', "the group the socket's group bits admit (a name or a gid)")
    .action(act(mkpool));
  withCommonOptions(program.command('info').description('show the pool: capacity, use, persistence')).action(act(info));
  withCommonOptions(program.command('grow').description('grow the pool to a new size'))
    .requiredOption('--size <size>', 'new pool size', sizeArg('pool size', true))
    .action(act(grow));
  withCommonOptions(program.command('set-access').description("set who may connect to the pool's regiond (its owner or root only)"))
    .option('--socket-mode <octal>', "the socket's mode, 0600 (the owner only) to 0666 (everyone)", octalArg)
    .option('--group <group>', "the group the socket's group bits admit (a name or a gid)")
    .option('--no-group', 'remove the group')
    .action(act(setAccess));
  withCommonOptions(program.command('fsck').description('check the pool (works on pools too damaged to open)'), { poolMode: false })
    .option('--repair', 'fix what needs no guessing (stale superblock copy, unapplied journal record)')
    .action(act(fsck));
}

function mkpool(cmd: Command): void {
  const globals = globalsOf(cmd);
  const { size, persistence, socketMode, group } = cmd.opts<{ size: number; persistence: Persistence; socketMode?: number; group?: string }>();
  const pool = createPool(globals.poolPath, { size, persistence, mode: globals.poolMode, access: { socketMode, group } });
  try {
    const info = pool.info();
    emit(globals, info, () => [`created pool ${info.path}: ${formatSize(info.capacityBytes)}, persistence ${info.persistence}, ${accessLine(info.access)}`]);
  } finally {
    pool.close();
  }
}

/** Writes nothing: what a read-write open would repair is said, and left for fsck to find. */
async function info(cmd: Command): Promise<void> {
  const globals = globalsOf(cmd);
  const [info, unwritten] = await withLook(globals, (pool, notWritten) => [pool.info(), notWritten] as const);
  const notes = unwritten.map((what) => `not written (info only reads): ${what}; regions fsck --repair writes it`);
  emit(globals, unwritten.length === 0 ? info : { ...info, unwritten }, () => [...poolLines(info), ...notes]);
}

function grow(cmd: Command): void {
  const globals = globalsOf(cmd);
  const { size } = cmd.opts<{ size: number }>();
  const info = withPool(globals, (pool) => {
    pool.grow(size);
    return pool.info();
  });
  emit(globals, info, () => [`grew ${globals.poolPath} to ${formatSize(info.capacityBytes)}`]);
}

/** Changes only what is given: `--group G` alone keeps the mode, `--no-group` removes the group. */
function setAccess(cmd: Command): void {
  const globals = globalsOf(cmd);
  const { socketMode, group } = cmd.opts<{ socketMode?: number; group?: string | false }>();
  const options: PoolAccessOptions = { socketMode, group: group === false ? null : group };
  const access = withPool(globals, (pool) => setPoolAccess(pool, options));
  emit(globals, access, () => [`${globals.poolPath}: ${accessLine(access)}`]);
}

/** Exit 1 while problems remain (after --repair, those it could not fix). */
function fsck(cmd: Command): number {
  const globals = globalsOf(cmd);
  const report = checkPool(globals.poolPath, { repair: cmd.opts()['repair'] === true });
  emit(globals, report, () => [
    ...report.problems.map(problemLine),
    `${globals.poolPath}: ${report.ok ? 'ok' : 'problems remain'} (${count(report.problems.length, 'problem')}, `
      + `${count(report.regionsChecked, 'region')} checked, ${count(report.blocksReferenced, 'block')} referenced, `
      + `${report.blocksFree} free)`,
  ]);
  return report.ok ? 0 : 1;
}
