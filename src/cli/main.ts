// Entry point of `regions` (bin/regions.js imports this module). Runs the program and turns
// every outcome into an exit status: 0 success, 1 an error (one line `regions: <message>` on
// stderr), 2 a usage error (commander's message). Stack traces only with REGIONS_DEBUG=1.

import { CommanderError } from 'commander';
import { buildProgram } from './program.js';

const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) return usageStatus(error);
    reportError(error);
    return EXIT_ERROR;
  }
}

/** commander has already printed its message (or the help or version) when it throws. */
function usageStatus(error: CommanderError): number {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
  if (error.code === 'commander.help') return error.exitCode === 0 ? 0 : EXIT_USAGE; // no command given
  return EXIT_USAGE;
}

function reportError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  // Some layers already prefix their messages; the user sees the prefix once, on one line.
  const line = message.replace(/^regions: /, '').replace(/\s*\n\s*/g, '; ');
  process.stderr.write(`regions: ${line}\n`);
  if (process.env['REGIONS_DEBUG'] === '1' && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
}

// A reader that closes the pipe early (`regions read x | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(Number(process.exitCode ?? 0));
});

process.exitCode = await main(process.argv);
