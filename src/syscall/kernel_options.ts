// How the client (exclusive mode) and regiond (shared mode) mount a pool's kernel: the debug
// mode that re-checks every on-PM invariant after every commit is on when the environment
// says REGIONS_CHECK_INVARIANTS=1 (docs/format.md, Invariants).

import type { KernelOptions } from '../kernel/region_manager.js';

export function kernelOptionsFromEnvironment(env: NodeJS.ProcessEnv = process.env): KernelOptions {
  return { checkInvariants: env['REGIONS_CHECK_INVARIANTS'] === '1' };
}
