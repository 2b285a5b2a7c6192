// Pool commands: mkpool, info, grow, fsck.

import { type Command, Option } from 'commander';
import { checkPool, createPool } from '../../pool.js';
import type { Persistence } from '../../api.js';
import { formatSize } from '../../util/size.js';
import { act, globalsOf, sizeArg, withCommonOptions, withPool } from '../context.js';
import { emit, poolLines, problemLine } from '../output.js';

export function registerPoolCommands(program: Command): void {
  withCommonOptions(program.command('mkpool').description('create a pool file'), { poolMode: false })
    .requiredOption('--size <size>', 'pool size, e.g. 64MiB', sizeArg('pool size'))
    .addOption(new Option('--persistence <how>', 'how stores are made durable').choices(['pmem', 'msync', 'auto']).default('auto'))
    .action(act(mkpool));
  withCommonOptions(program.command('info').description('show the pool: capacity, use, persistence')).action(act(info));
  withCommonOptions(program.command('grow').description('grow the pool to a new size'))
    .requiredOption('--size <size>', 'new pool size', sizeArg('pool size'))
    .action(act(grow));
  withCommonOptions(program.command('fsck').description('check the pool (works on pools too damaged to open)'), { poolMode: false })
    .option('--repair', 'fix what needs no guessing (stale superblock copy, unapplied journal record)')
    .action(act(fsck));
}

function mkpool(cmd: Command): void {
  const globals = globalsOf(cmd);
  const { size, persistence } = cmd.opts<{ size: number; persistence: Persistence }>();
  const pool = createPool(globals.poolPath, { size, persistence, mode: globals.poolMode });
  try {
    const info = pool.info();
    emit(globals, info, () => [`created pool ${info.path}: ${formatSize(info.capacityBytes)}, persistence ${info.persistence}`]);
  } finally {
    pool.close();
  }
}

function info(cmd: Command): void {
  const globals = globalsOf(cmd);
  const info = withPool(globals, (pool) => pool.info());
  emit(globals, info, () => poolLines(info));
}

function grow(cmd: Command): void {
  const globals = globalsOf(cmd);
  const { size } = cmd.opts<{ size: number }>();
  withPool(globals, (pool) => pool.grow(size));
  emit(globals, { ok: true }, () => [`grew ${globals.poolPath} to ${formatSize(size)}`]);
}

/** Exit 1 while problems remain (after --repair, those it could not fix). */
function fsck(cmd: Command): number {
  const globals = globalsOf(cmd);
  const report = checkPool(globals.poolPath, { repair: cmd.opts()['repair'] === true });
  emit(globals, report, () => [
    ...report.problems.map(problemLine),
    `${globals.poolPath}: ${report.ok ? 'ok' : 'problems remain'} (${report.problems.length} problems, ${report.regionsChecked} regions checked, ` +
      `${report.blocksReferenced} blocks referenced, ${report.blocksFree} free)`,
  ]);
  return report.ok ? 0 : 1;
}
