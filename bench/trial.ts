// One trial in a fresh process: `node dist/bench/trial.js '<TrialSpec as JSON>'` runs one
// system at one point and prints its TrialResult as the last line of stdout. A failure is
// a message on stderr and exit status 1. The runner (bench/run.ts) starts one per trial.
// The native peers (bench/peers/*.c) follow the same protocol as programs of their own.

import { systemNamed } from './systems.js';
import type { TrialResult, TrialSpec } from './workload.js';

async function runTrial(spec: TrialSpec): Promise<TrialResult> {
  switch (spec.workload) {
    case 'pages':
    case 'records':
      return runUnits(spec);
    case 'map':
      return (await import('./trials/map.js')).runMap(spec);
    case 'mount':
      return (await import('./trials/mount.js')).runMount(spec);
    case 'shared':
      return (await import('./trials/shared.js')).runShared(spec);
    case 'opcosts': {
      const costs = (await import('./trials/metadata.js')).opCosts();
      return { ops: 1, opNs: [0], userBytesPerOp: 0, data: costs };
    }
    default:
      throw new Error(`unknown workload ${spec.workload}`);
  }
}

async function runUnits(spec: TrialSpec): Promise<TrialResult> {
  const system = systemNamed(spec.system);
  switch (system.family) {
    case 'regions':
      return (await import('./trials/regions.js')).runRegionsUnits(spec);
    case 'lmdb':
      return (await import('./trials/lmdb.js')).runLmdbUnits(spec);
    case 'sqlite':
      return (await import('./trials/sqlite.js')).runSqliteUnits(spec);
    case 'mmap':
      return (await import('./trials/mmap.js')).runMmapUnits(spec);
    case 'limit':
      if (system.name === 'limit-device') return (await import('./trials/mmap.js')).runDeviceUnits(spec);
      break;
    default:
      break;
  }
  throw new Error(`${spec.system} runs as a native peer, not in a Node trial`);
}

try {
  const spec = JSON.parse(process.argv[2] ?? '') as TrialSpec;
  const result = await runTrial(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
