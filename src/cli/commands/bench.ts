// `regions bench`: runs the benchmark suite of bench/ (see bench/README.md) and writes its
// report. The suite is development tooling that ships with the source repository, not with
// the package, so it is loaded only when this command runs, and its absence is a clear error.

import { type Command } from 'commander';
import { RegionError } from '../../errors.js';
import { act, globalsOf } from '../context.js';
import { emit } from '../output.js';

interface SuiteModules {
  run: { parseArgs(argv: string[]): object };
  suite: { runSuite(options: object): Promise<{ reportPath: string; jsonPath: string; svgPaths: string[]; results: object }> };
}

interface BenchOptions {
  quick?: boolean;
  out?: string;
  only?: string;
  install?: boolean;
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run every workload against the Region System and its peers; write bench/results/<date>-<host>.{json,md}')
    .option('--quick', 'a smoke run of a few minutes (few points, 16 MiB only)')
    .option('--out <dir>', 'directory for the report (default bench/results)')
    .option('--only <workloads>', 'comma-separated subset: pages,records,shared,map,mount,opcosts')
    .option('--install', 'install missing peers first (the default for a full run)')
    .option('--no-install', 'never install peers')
    .option('--json', 'print the whole result document')
    .action(act(bench));
}

async function bench(cmd: Command): Promise<void> {
  const globals = globalsOf(cmd);
  const options = cmd.opts<BenchOptions>();
  const argv = [...(options.quick === true ? ['--quick'] : []), ...(globals.json ? ['--json'] : [])];
  if (options.out !== undefined) argv.push('--out', options.out);
  if (options.only !== undefined) argv.push('--only', options.only);
  if (options.install !== undefined) argv.push(options.install ? '--install' : '--no-install');
  const modules = await loadSuite();
  const output = await modules.suite.runSuite(modules.run.parseArgs(argv));
  emit(globals, { report: output.reportPath, json: output.jsonPath, svgs: output.svgPaths, ...output.results }, () => [`report: ${output.reportPath}`, `results: ${output.jsonPath}`, `figures: ${output.svgPaths.length}`]);
}

/** dist/src/cli/commands -> dist/bench */
async function loadSuite(): Promise<SuiteModules> {
  try {
    const run = (await import(new URL('../../../bench/run.js', import.meta.url).href)) as SuiteModules['run'];
    const suite = (await import(new URL('../../../bench/suite.js', import.meta.url).href)) as SuiteModules['suite'];
    return { run, suite };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new RegionError('UNSUPPORTED', 'the benchmark suite (bench/) ships with the source repository only: run `regions bench` from a built clone', { cause: error });
  }
}
