// What every command shares: the global options (pool path, pool mode, --json) merged from the
// program and the command, the option-value parsers, and the pool's open/close pairing.
//
// Global options are positional (program options go before the command name) because
// `create --mode 0640` and the pool's `--mode shared` share a flag; so each command repeats
// -p/--json (and --mode where it means the pool mode) and the command's value wins.

import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Pool } from '../api.js';
import { openPool } from '../client/pool.js';
import { lookAtPool } from '../client/pool_look.js';
import type { PoolMode } from '../api.js';
import { isRegionError } from '../errors.js';
import { parseSize } from '../util/size.js';

export const POOL_PATH_DEFAULT = 'regions.pool';
export const POOL_MODES: readonly PoolMode[] = ['auto', 'exclusive', 'shared'];

export interface Globals {
  poolPath: string;
  poolMode: PoolMode;
  json: boolean;
}

/** An exit status (0 or nothing = success) returned by a command's action. */
export type Status = number | void;

const poolModeCommands = new WeakSet<Command>();

export function poolModeOption(): Option {
  return new Option('--mode <mode>', 'pool mode (default auto)').choices(POOL_MODES);
}

/** Adds -p/--json to a command, and --mode (pool mode) unless the command uses --mode itself. */
export function withCommonOptions(cmd: Command, options: { poolMode: boolean } = { poolMode: true }): Command {
  cmd.option('-p, --pool <path>', 'pool file (default $REGIONS_POOL, else ./regions.pool)');
  cmd.option('--json', 'print one JSON document');
  if (options.poolMode) {
    cmd.addOption(poolModeOption());
    poolModeCommands.add(cmd);
  }
  return cmd;
}

export function globalsOf(cmd: Command): Globals {
  const root = cmd.parent?.opts() ?? {};
  const local = cmd.opts();
  const localMode: unknown = poolModeCommands.has(cmd) ? local['mode'] : undefined;
  return {
    poolPath: (local['pool'] ?? root['pool'] ?? process.env['REGIONS_POOL']) || POOL_PATH_DEFAULT,
    poolMode: (localMode ?? root['mode'] ?? 'auto') as PoolMode,
    json: Boolean(local['json'] ?? root['json']),
  };
}

/** Adapts a command to commander's action signature; its return value becomes the exit status. */
export function act<A extends unknown[]>(run: (cmd: Command, ...args: A) => Status | Promise<Status>) {
  return async (...received: unknown[]): Promise<void> => {
    const cmd = received[received.length - 1] as Command;
    const status = await run(cmd, ...(received.slice(0, -2) as A));
    if (status) process.exitCode = status;
  };
}

/** Opens the pool, runs use, and closes the pool whatever happens. */
export function withPool<T>(globals: Globals, use: (pool: Pool) => T): T {
  const pool = openPool(globals.poolPath, { mode: globals.poolMode });
  try {
    return use(pool);
  } finally {
    pool.close();
  }
}

/**
 * withPool for the commands that only read: they never write to the pool file (see
 * src/client/pool_look.ts); `unwritten` says what a read-write open would have repaired.
 */
export async function withLook<T>(
  globals: Globals, use: (pool: Pool, unwritten: string[]) => T | Promise<T>,
): Promise<T> {
  const { pool, unwritten } = lookAtPool(globals.poolPath, { mode: globals.poolMode });
  try {
    return await use(pool, unwritten);
  } finally {
    pool.close();
  }
}

// Option-value parsers: a malformed value is a usage error (exit 2), so RegionErrors from
// parsing become commander's InvalidArgumentError.

/** A size argument; `positive` (sizes of pools and regions) also refuses 0: a usage error, exit 2. */
export function sizeArg(what: string, positive = false): (value: string) => number {
  return (value) => {
    const bytes = usage(() => parseSize(value, what));
    if (positive && bytes === 0) throw new InvalidArgumentError(`${what} must be more than 0 bytes`);
    return bytes;
  };
}

export function octalArg(value: string): number {
  if (!/^(0o?)?[0-7]{1,4}$/i.test(value)) throw new InvalidArgumentError(`"${value}" is not an octal permission mode such as 0640`);
  return parseInt(value.replace(/^0o/i, ''), 8);
}

export function integerArg(what: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`${what} "${value}" is not a whole number`);
    return Number(value);
  };
}

function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (isRegionError(error, 'INVALID')) throw new InvalidArgumentError(error.message);
    throw error;
  }
}
