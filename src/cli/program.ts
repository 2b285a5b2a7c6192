// The `regions` command tree (commander). Each command module registers its commands; this
// file holds the program-wide options and the settings every subcommand inherits.

import fs from 'node:fs';
import { Command } from 'commander';
import { poolModeOption } from './context.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCrashtestCommand } from './commands/crashtest.js';
import { registerDaemonCommand } from './commands/daemon.js';
import { registerDataCommands } from './commands/data.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerPoolCommands } from './commands/pool.js';
import { registerRegionCommands } from './commands/region.js';

export function buildProgram(): Command {
  const program = new Command('regions')
    .description('Named, persistent, byte-addressable regions of a persistent-memory pool')
    .version(packageVersion(), '--version', 'print the version')
    .option('-p, --pool <path>', 'pool file (default $REGIONS_POOL, else ./regions.pool)')
    .option('--json', 'print one JSON document on stdout')
    .addOption(poolModeOption())
    // Program options go before the command name: `create --mode` means permission bits.
    .enablePositionalOptions()
    // Settings below are copied into each subcommand, so they must precede registration.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'regions: ')) });
  registerPoolCommands(program);
  registerRegionCommands(program);
  registerDataCommands(program);
  registerCrashtestCommand(program);
  registerDemoCommand(program);
  registerBenchCommand(program);
  registerDaemonCommand(program);
  return program;
}

/** The version in package.json (dist/src/cli/program.js is three levels below it). */
function packageVersion(): string {
  const text = fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
