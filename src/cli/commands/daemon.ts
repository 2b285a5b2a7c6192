// `regions daemon`: regiond in the foreground (shared mode's server; openPool starts it
// detached on demand). It prints one line (or JSON document) once it serves, and runs until
// it has had no client for --idle-exit seconds, or until SIGTERM / SIGINT.

import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Persistence } from '../../api.js';
import { IDLE_EXIT_MS_DEFAULT } from '../../constants.js';
import { RegionError } from '../../errors.js';
import { socketMissing } from '../../client/reachability.js';
import { runRegiond, StartDeclined } from '../../regiond/regiond.js';
import { socketAddress } from '../../wire/socket_path.js';
import { act, globalsOf, withCommonOptions } from '../context.js';
import { emit } from '../output.js';

export function registerDaemonCommand(program: Command): void {
  withCommonOptions(program.command('daemon').description('run regiond, the pool\'s server for shared mode, in the foreground'), { poolMode: false })
    .option('--idle-exit <seconds>', 'exit after this many seconds without clients (0: never)', secondsArg, IDLE_EXIT_MS_DEFAULT / 1000)
    .addOption(new Option('--persistence <how>', 'how stores are made durable').choices(['pmem', 'msync', 'auto']).default('auto'))
    .action(act(daemon));
}

async function daemon(cmd: Command): Promise<void> {
  const globals = globalsOf(cmd);
  const { idleExit, persistence } = cmd.opts<{ idleExit: number; persistence: Persistence }>();
  const address = socketAddress(globals.poolPath);
  try {
    await runRegiond({
      poolPath: globals.poolPath,
      persistence,
      idleExitMs: idleExit * 1000,
      lockWaitMs: 0,
      report: (report) => {
        if (report.state !== 'ready') return;
        const socket = path.join(address.directory, address.name);
        emit(globals, { pid: report.pid, pool: address.poolPath, socket, idleExitSeconds: idleExit }, () => [
          `regiond ${report.pid}: serving ${address.poolPath} on ${socket}${idleExit > 0 ? `; exits after ${idleExit} s without clients` : ''}`,
        ]);
      },
    });
  } catch (error) {
    if (!(error instanceof StartDeclined)) throw error;
    if (error.report.state === 'served') throw new RegionError('BUSY', `pool ${address.poolPath} is served by another regiond already`);
    const holder = error.report.holder;
    if (error.report.regiond) throw socketMissing(address, holder);
    throw new RegionError('BUSY', `pool ${address.poolPath} is held exclusively by ${holder > 0 ? `pid ${holder}` : 'another process'}`);
  }
}

function secondsArg(value: string): number {
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(seconds)) throw new InvalidArgumentError(`"${value}" is not a number of seconds`);
  return seconds;
}
