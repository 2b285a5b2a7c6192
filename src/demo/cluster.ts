// The demo's workers and the pool's kernel, and what the workers report. In shared mode the
// workers are processes and regiond is the kernel; otherwise one host process holds the pool
// exclusively and runs the workers as threads (src/demo/worker.ts): the host plays regiond
// and dies with its workers. Only the Cluster differs between the two.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseReport, type DemoReport } from './report.js';

export const WORKERS = 3;
export const LEDGER_REGION = 'ledger';
/** Workers never outlive the demo: their own deadline. */
const WORKER_RUN_MS_MAX = 20_000;
/** Children still running this long after the kernel's kill are killed too. */
const EXIT_WAIT_MS = 3000;
/** How long the demo waits for every worker to map the ledger. */
const READY_WAIT_MS = 10_000;

/** Everything the workers reported, gathered as lines arrive. */
export class Reports {
  readonly intents = new Map<number, string>();
  readonly synced: Extract<DemoReport, { kind: 'synced' }>[] = [];
  readonly takeovers: Extract<DemoReport, { kind: 'takeover' }>[] = [];
  readonly failures: string[] = [];
  readonly workerPids = new Map<number, number>();
  /** Every report line as it arrived: the demo keeps them beside the pool for a later check. */
  readonly lines: string[] = [];
  lastAcked = 0;
  hostPid = 0;
  onSynced: () => void = () => {};
  onIntent: (worker: number) => void = () => {};

  take(report: DemoReport): void {
    switch (report.kind) {
      case 'host': this.hostPid = report.pid; break;
      case 'ready': this.workerPids.set(report.worker, report.pid); break;
      case 'intent': this.intents.set(report.seq, report.hash); this.onIntent(report.worker); break;
      case 'synced':
        this.synced.push(report);
        this.lastAcked = Math.max(this.lastAcked, report.seq);
        this.onSynced();
        break;
      case 'takeover': this.takeovers.push(report); break;
      case 'failed': this.failures.push(`worker ${report.worker}: ${report.message}`); break;
      case 'done': break;
    }
  }

  listen(child: ChildProcessWithoutNullStreams): void {
    const debug = process.env['REGIONS_DEBUG'] === '1';
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const report = parseReport(line);
      if (report) {
        this.lines.push(line);
        this.take(report);
      }
      if (debug && report?.kind !== 'intent' && report?.kind !== 'synced') process.stderr.write(`[worker] ${line}\n`);
    });
    // A worker's own stderr (regiond gone, ...) is expected noise after the kills; REGIONS_DEBUG=1 shows it.
    if (debug) child.stderr.pipe(process.stderr);
    else child.stderr.resume();
  }
}

/** The workers and the pool's kernel, as processes + regiond or as threads of one host. */
export interface Cluster {
  readonly kind: 'processes' | 'threads';
  readonly kernel: string;
  /** Resolves when every worker has mapped the ledger. */
  start(): Promise<void>;
  /** SIGKILLs one worker; null where a worker cannot die alone. */
  killWorker(worker: number): number | null;
  /** The pid of the pool's kernel (regiond, or the host). */
  kernelPid(): number;
  /** SIGKILLs the pool's kernel; returns its pid. */
  killKernel(): number;
  /** Resolves when every child is gone (stragglers are killed after EXIT_WAIT_MS). */
  exited(): Promise<void>;
  /** SIGKILLs every child still running (the demo failed). */
  abort(): void;
}

const workerScript = fileURLToPath(new URL('./worker.js', import.meta.url));

function spawnWorker(args: string[], reports: Reports): ChildProcessWithoutNullStreams {
  const env = { ...process.env, REGIONS_QUIET: '1' };
  const child = spawn(process.execPath, [workerScript, ...args], { stdio: 'pipe', env });
  reports.listen(child);
  return child;
}

/** Resolves once `ready` holds, polling; rejects after READY_WAIT_MS. */
function whenReady(ready: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (ready()) resolve();
      else if (Date.now() - started <= READY_WAIT_MS) setTimeout(poll, 10);
      else reject(new Error(`demo: ${what} did not happen within ${READY_WAIT_MS} ms`));
    };
    poll();
  });
}

function exitedAll(children: ChildProcessWithoutNullStreams[]): Promise<void> {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const timer = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), EXIT_WAIT_MS);
  const closed = running.map((c) => new Promise((resolve) => c.once('close', resolve)));
  return Promise.all(closed).then(() => clearTimeout(timer));
}

/** Shared mode: WORKERS worker processes, each mapping the ledger through regiond. */
export function processCluster(poolPath: string, regiondPid: number, reports: Reports): Cluster {
  const children: ChildProcessWithoutNullStreams[] = [];
  return {
    kind: 'processes',
    kernel: 'regiond',
    async start() {
      const deadline = String(Date.now() + WORKER_RUN_MS_MAX);
      for (let w = 0; w < WORKERS; w++) {
        children.push(spawnWorker(['process', poolPath, LEDGER_REGION, String(w), deadline], reports));
      }
      await whenReady(() => reports.workerPids.size === WORKERS, 'every worker ready');
      for (const child of children) child.stdin.write('go\n'); // all have mapped: start together
    },
    killWorker(worker) {
      children[worker]?.kill('SIGKILL');
      return reports.workerPids.get(worker) ?? null;
    },
    kernelPid: () => regiondPid,
    killKernel() {
      process.kill(regiondPid, 'SIGKILL');
      return regiondPid;
    },
    exited: () => exitedAll(children),
    abort: () => children.forEach((c) => c.kill('SIGKILL')),
  };
}

/** Without shared mode: one host process holds the pool and runs WORKERS worker threads. */
export function threadCluster(poolPath: string, reports: Reports): Cluster {
  let host: ChildProcessWithoutNullStreams | undefined;
  return {
    kind: 'threads',
    kernel: 'the host process',
    async start() {
      const deadline = String(Date.now() + WORKER_RUN_MS_MAX);
      host = spawnWorker(['host', poolPath, LEDGER_REGION, String(WORKERS), deadline], reports);
      await whenReady(() => reports.workerPids.size === WORKERS && reports.hostPid > 0, 'every worker thread ready');
    },
    killWorker: () => null,
    kernelPid: () => reports.hostPid,
    killKernel() {
      host?.kill('SIGKILL');
      return reports.hostPid;
    },
    exited: () => exitedAll(host ? [host] : []),
    abort: () => host?.kill('SIGKILL'),
  };
}
