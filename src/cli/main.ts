// Entry point of `regions` (bin/regions.js imports this module). Runs the program and turns
// every outcome into an exit status: 0 success, 1 an error (one line `regions: <message>` on
// stderr), 2 a usage error (commander's message). Stack traces only with REGIONS_DEBUG=1.

import { CommanderError } from 'commander';
import { isRegionError } from '../errors.js';
import { jsonText } from './output.js';
import { buildProgram } from './program.js';

const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      const status = usageStatus(error);
      if (status !== 0) errorDocument(argv, 'USAGE', error.message.replace(/^error: /, ''), status);
      return status;
    }
    const line = reportError(error);
    errorDocument(argv, isRegionError(error) ? error.code : 'ERROR', line, EXIT_ERROR);
    return EXIT_ERROR;
  }
}

/**
 * With --json a failure prints a document on stdout too, for whoever parses it:
 * { "error": { "code": "NOT_FOUND" (a RegionError's code, USAGE, or ERROR), "message", "exitCode" } }.
 */
function errorDocument(argv: string[], code: string, message: string, exitCode: number): void {
  const end = argv.indexOf('--');
  if (!(end < 0 ? argv : argv.slice(0, end)).includes('--json')) return;
  process.stdout.write(`${jsonText({ error: { code, message, exitCode } })}\n`);
}

/** commander has already printed its message (or the help or version) when it throws. */
function usageStatus(error: CommanderError): number {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
  if (error.code === 'commander.help') return error.exitCode === 0 ? 0 : EXIT_USAGE; // no command given
  return EXIT_USAGE;
}

/** Prints the error's one line on stderr and returns it (without the prefix). */
function reportError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Some layers already prefix their messages; the user sees the prefix once, on one line.
  const line = message.replace(/^regions: /, '').replace(/\s*\n\s*/g, '; ');
  process.stderr.write(`regions: ${line}\n`);
  if (process.env['REGIONS_DEBUG'] === '1' && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
  return line;
}

// A reader that closes the pipe early (`regions read x | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(Number(process.exitCode ?? 0));
});

process.exitCode = await main(process.argv);
