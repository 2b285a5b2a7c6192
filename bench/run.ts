// The benchmark suite's command line: `npm run bench` (full), `npm run bench:quick`, or
//
//   node dist/bench/run.js [--quick] [--json] [--out DIR] [--install | --no-install]
//                          [--only pages,records,shared,map,mount,opcosts] [--systems a,b,...]
//
// A full run installs missing peers first (bench/install-peers.sh); --quick does not unless
// asked. It prints where the report went, or with --json the whole result document.
// `--render FILE.json` writes the report of a saved run again (after the report changed).
// `regions bench` runs the same suite (src/cli/commands/bench.ts).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkloadName } from './plan.js';
import { writeReport } from './report.js';
import { runSuite, type SuiteOptions, type SuiteResults } from './suite.js';

const WORKLOADS: readonly WorkloadName[] = ['pages', 'records', 'shared', 'map', 'mount', 'opcosts'];

export function parseArgs(argv: string[]): SuiteOptions {
  const options: SuiteOptions = { quick: false, json: false, install: true };
  let install: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--json') options.json = true;
    else if (arg === '--install') install = true;
    else if (arg === '--no-install') install = false;
    else if (arg === '--out') options.outDir = value(argv, ++i, '--out');
    else if (arg === '--only') options.only = onlyArg(value(argv, ++i, '--only'));
    else if (arg === '--systems') options.systems = new Set(value(argv, ++i, '--systems').split(','));
    else throw new UsageError(`unknown option ${arg}`);
  }
  options.install = install ?? !options.quick;
  return options;
}

export function onlyArg(text: string): Set<WorkloadName> {
  const names = text.split(',').map((s) => s.trim());
  for (const name of names) if (!WORKLOADS.includes(name as WorkloadName)) throw new UsageError(`--only: unknown workload ${name} (choose from ${WORKLOADS.join(', ')})`);
  return new Set(names as WorkloadName[]);
}

function value(argv: string[], index: number, option: string): string {
  const found = argv[index];
  if (found === undefined) throw new UsageError(`${option} needs a value`);
  return found;
}

export class UsageError extends Error {}

/** Writes the Markdown and the figures of a saved result document again, beside it (or in --out). */
async function render(argv: string[]): Promise<void> {
  const file = value(argv, argv.indexOf('--render') + 1, '--render');
  const outIndex = argv.indexOf('--out');
  const outDir = outIndex >= 0 ? value(argv, outIndex + 1, '--out') : path.dirname(file);
  const results = JSON.parse(fs.readFileSync(file, 'utf8')) as SuiteResults;
  const written = await writeReport(results, outDir, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`report: ${written.reportPath}\nfigures: ${written.svgPaths.length}\n`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--render')) return render(process.argv.slice(2));
  let options: SuiteOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const output = await runSuite(options);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ report: output.reportPath, json: output.jsonPath, svgs: output.svgPaths, ...output.results })}\n`);
    return;
  }
  process.stdout.write(`report: ${output.reportPath}\nresults: ${output.jsonPath}\nfigures: ${output.svgPaths.length}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
