// The peers, from the runner's side: which can be had on this machine (and why not), their
// versions, installing missing ones (bench/install-peers.sh, `npm run bench:peers`), building the native harnesses
// of bench/peers/ with cc, and running one native trial.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { moduleVersion, PEERS_COMMAND, peerVersion, requirePeer } from './peer_modules.js';
import type { Family, NativeBinary, SystemDef } from './systems.js';
import type { TrialResult, TrialSpec } from './workload.js';

/** Why a family cannot run here (absent: it can). */
export type PeerStatus = Partial<Record<Family | 'disk', string>>;

export interface Peers {
  unavailable: PeerStatus;
  binaries: Partial<Record<NativeBinary, string>>;
  versions: Record<string, string>;
}

const PMDK_HEADER = '/usr/include/libpmemobj.h';
const NATIVE_TIMEOUT_MS = 10 * 60_000;
const CC_FLAGS = ['-O2', '-std=gnu11', '-Wall', '-Wextra'];

export interface PeerOptions {
  repoRoot: string;
  buildDir: string;
  install: boolean;
  diskDir: string | undefined;
  log: (line: string) => void;
}

export function preparePeers(options: PeerOptions): Peers {
  if (options.install && missingInstallable()) installPeers(options);
  const unavailable: PeerStatus = {};
  const binaries: Partial<Record<NativeBinary, string>> = {};
  const versions: Record<string, string> = {};
  fs.mkdirSync(options.buildDir, { recursive: true });
  const limit = buildNative(options, 'limit_peer', []);
  if (typeof limit === 'string') unavailable.limit = limit;
  else binaries.limit_peer = limit.path;
  if (!fs.existsSync(PMDK_HEADER)) {
    unavailable.pmdk = `libpmemobj-dev is not installed (${PEERS_COMMAND} installs it as root)`;
  } else {
    const pmdk = buildNative(options, 'pmdk_peer', ['-rdynamic', '-lpmemobj', '-lpmem', '-ldl']);
    if (typeof pmdk === 'string') unavailable.pmdk = pmdk;
    else binaries.pmdk_peer = pmdk.path;
    const version = packageVersion('libpmemobj1') ?? packageVersion('libpmemobj-dev');
    if (version !== undefined) versions['libpmemobj'] = version;
  }
  const lmdb = peerVersion('lmdb');
  if (lmdb === undefined) unavailable.lmdb = `lmdb-js is not installed (${PEERS_COMMAND})`;
  else versions['lmdb-js'] = lmdb;
  const sqlite = loadsSqlite();
  if (typeof sqlite === 'string') unavailable.sqlite = sqlite;
  else Object.assign(versions, sqlite);
  if (options.diskDir === undefined) unavailable.disk = 'no ordinary (non-tmpfs) file system found for scratch files (set REGIONS_BENCH_DISK_DIR)';
  for (const name of ['vega', 'vega-lite'] as const) {
    const version = peerVersion(name);
    if (version !== undefined) versions[name] = version;
  }
  const progress = moduleVersion(createRequire(path.join(options.repoRoot, 'package.json')), 'cli-progress');
  if (progress !== undefined) versions['cli-progress'] = progress;
  const cc = commandLine('cc', ['--version']);
  if (cc !== undefined) versions['cc'] = cc;
  return { unavailable, binaries, versions };
}

/** Why system cannot run here, or undefined if it can. */
export function unavailableReason(peers: Peers, system: SystemDef): string | undefined {
  if (system.fs === 'disk' && peers.unavailable.disk !== undefined) return peers.unavailable.disk;
  if (system.native !== undefined && peers.binaries[system.native.binary] === undefined) return peers.unavailable[system.family] ?? `${system.native.binary} was not built`;
  return peers.unavailable[system.family];
}

function missingInstallable(): boolean {
  const modules = (['lmdb', 'vega', 'vega-lite'] as const).every((name) => peerVersion(name) !== undefined);
  return !fs.existsSync(PMDK_HEADER) || !modules || typeof loadsSqlite() === 'string';
}

function installPeers(options: PeerOptions): void {
  options.log('bench: installing missing peers (bench/install-peers.sh)');
  const script = path.join(options.repoRoot, 'bench', 'install-peers.sh');
  const run = spawnSync('bash', [script], { cwd: options.repoRoot, stdio: ['ignore', 'pipe', 'pipe'], timeout: NATIVE_TIMEOUT_MS });
  for (const line of `${run.stdout?.toString() ?? ''}${run.stderr?.toString() ?? ''}`.split('\n')) {
    if (line.startsWith('bench:')) options.log(line);
  }
}

function buildNative(options: PeerOptions, name: NativeBinary, libraries: string[]): { path: string } | string {
  const source = path.join(options.repoRoot, 'bench', 'peers', `${name}.c`);
  const binary = path.join(options.buildDir, name);
  const run = spawnSync('cc', [...CC_FLAGS, '-o', binary, source, ...libraries], { stdio: ['ignore', 'pipe', 'pipe'], timeout: NATIVE_TIMEOUT_MS });
  if (run.error !== undefined) return `cannot run cc to build bench/peers/${name}.c (${run.error.message})`;
  if (run.status !== 0) return `cc failed on bench/peers/${name}.c: ${run.stderr.toString().split('\n').find((l) => l.includes('error')) ?? run.stderr.toString().trim()}`;
  return { path: binary };
}

interface SqliteProbe {
  prepare(sql: string): { get(): Record<string, unknown> | undefined };
  close(): void;
}

function loadsSqlite(): Record<string, string> | string {
  const version = peerVersion('better-sqlite3');
  if (version === undefined) return `better-sqlite3 is not installed (${PEERS_COMMAND})`;
  try {
    const Database = requirePeer('better-sqlite3') as new (file: string) => SqliteProbe;
    const db = new Database(':memory:');
    const sqlite = String(db.prepare('SELECT sqlite_version() AS v').get()?.['v']);
    db.close();
    return { 'better-sqlite3': version, sqlite };
  } catch (error) {
    return `better-sqlite3 ${version} does not load: ${(error as Error).message.split('\n')[0]}`;
  }
}

function packageVersion(name: string): string | undefined {
  return commandLine('dpkg-query', ['-W', '-f=${Version}', name]);
}

function commandLine(command: string, args: string[]): string | undefined {
  const run = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  if (run.status !== 0) return undefined;
  return run.stdout.toString().split('\n')[0]?.trim() || undefined;
}

/** Runs one trial of a native peer: the C program follows bench/peers/common.h. */
export function runNativeTrial(peers: Peers, system: SystemDef, spec: TrialSpec): TrialResult {
  const native = system.native;
  const binary = native === undefined ? undefined : peers.binaries[native.binary];
  if (native === undefined || binary === undefined) return { skipped: unavailableReason(peers, system) ?? `${system.name} is not native` };
  const args = ['--file', spec.file, '--data-bytes', String(spec.params['dataBytes']), '--unit-bytes', String(spec.params['unitBytes']), '--count', String(spec.params['count'])];
  args.push('--pattern', String(spec.params['pattern']), '--seed', String(spec.seed), '--stamp', String(spec.stamp));
  args.push('--warmup', String(spec.warmup), '--warmup-ms', String(Math.round(spec.warmupMs)));
  args.push('--ops-min', String(spec.opsMin), '--ops-max', String(spec.opsMax), '--budget-ms', String(Math.round(spec.budgetMs)), '--variant', native.variant);
  const run = spawnSync(binary, args, { env: { ...process.env, ...native.env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: NATIVE_TIMEOUT_MS, maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`${native.binary} failed (${run.signal ?? `exit ${run.status}`}): ${run.stderr.toString().trim()}`);
  const parsed = JSON.parse(run.stdout.toString().trim().split('\n').pop() ?? '{}') as { ops: number; opNs: number[]; linesFlushed: number; fences: number; pmBytes: number; notes: string };
  const unitBytes = Number(spec.params['unitBytes']);
  return {
    ops: parsed.ops,
    opNs: parsed.opNs,
    linesFlushed: parsed.linesFlushed,
    fences: parsed.fences,
    pmBytes: parsed.pmBytes,
    pmBytesSource: system.family === 'pmdk' ? 'lines flushed (interposed libpmem) x 64' : 'lines written back x 64',
    userBytesPerOp: Number(spec.params['count']) * unitBytes,
    notes: parsed.notes,
  };
}
