// `regions demo`: the command's options and its table. The demo itself (workers, kills,
// recovery, verification) lives in src/demo/.

import type { Command } from 'commander';
import { DEMO_DIR_DEFAULT, runDemo } from '../../demo/demo.js';
import { act, globalsOf, type Status } from '../context.js';
import { formatNs } from '../../util/duration.js';
import { emit, table } from '../output.js';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('three workers share a ledger region under a lock; kill one and the pool kernel; recover and verify')
    .option('--dir <dir>', 'directory for demo.pool', DEMO_DIR_DEFAULT)
    .option('--threads', 'run the workers as threads of one host process that holds the pool (no regiond)')
    .option('--json', 'print one JSON document')
    .action(act(demo));
}

async function demo(cmd: Command): Promise<Status> {
  const globals = globalsOf(cmd);
  const { dir, threads } = cmd.opts<{ dir: string; threads?: boolean }>();
  const say = (line: string): void => void (globals.json || process.stdout.write(`${line}\n`));
  const result = await runDemo({ dir, threads: threads === true, json: globals.json, say });
  emit(globals, result, () => ['', ...table([
    ['pmsyncs', `${result.pmsyncs} (from ${result.workers} ${result.mode})`],
    ['pages per pmsync', result.pagesPerPmsync.toFixed(1)],
    ['median pmsync', formatNs(result.pmsyncLatencyNsMedian)],
    ['lines flushed per pmsync', result.linesFlushedPerPmsync.toFixed(1)],
    ['fences per pmsync', result.fencesPerPmsync.toFixed(2)],
    ['recovery', formatNs(result.recoveryNs)],
    ['verified', result.verified ? 'yes' : `no: ${result.failures.join('; ')}`],
  ])]);
  return result.verified ? 0 : 1;
}
