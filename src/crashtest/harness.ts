// Crash-state checking of the region manager on a SimDevice. A scenario builds a pool state
// (setup) and then runs its steps. The steps run twice from the same image: once to learn
// the state after each, once with a fence hook that, before every fence and after each step,
// takes the crash images the device could leave, mounts each, runs check(), and requires the
// logical state to equal exactly the state before or after the step in progress (after a
// step has returned, only the state after it).
// Optionally each image's mount is itself crashed at every fence (a crash during recovery).

import { createHash } from 'node:crypto';
import { RegionError } from '../errors.js';
import { RegionManager } from '../kernel/region_manager.js';
import { SimDevice } from '../pm/sim_device.js';

export const FIXED_NOW = 1_700_000_000_000;

export interface CrashScenario {
  name: string;
  poolBytes: number;
  /** The device's bytes before format (default zeros): a reused pool file holds an old pool's. */
  formatOver?: () => Uint8Array;
  setup(kernel: RegionManager): void;
  /** One or more durable operations; a crash during step j must leave the state after j-1 or j. */
  steps: ((kernel: RegionManager) => void)[];
}

export interface CrashOptions {
  unitsMax: number;
  samples: number;
  seed: number;
  /** Crash each image's recovery too, for the first this-many images of each point. */
  recoveryCrashes: number;
}

export interface CrashFailure {
  scenario: string;
  point: number;
  image: number;
  seed: number;
  message: string;
}

export interface ScenarioResult {
  scenario: string;
  points: number;
  images: number;
  failures: CrashFailure[];
}

/** The logical state a user can observe: regions, their attributes and contents, and the pool's access setting. */
export function logicalState(kernel: RegionManager): string {
  const regions = kernel.list().map((info) => {
    const ref = kernel.lookup(info.name);
    const hash = createHash('sha256');
    const page = new Uint8Array(4096);
    for (let p = 0; p * 4096 < info.sizeBytes; p++) {
      kernel.readPage(ref, p, page);
      hash.update(page);
    }
    const { createdAt: _c, modifiedAt: _m, ...stable } = info;
    return { ...stable, content: hash.digest('hex').slice(0, 16) };
  });
  const counts = kernel.poolCounts();
  return JSON.stringify({ capacity: counts.capacityBytes, used: counts.usedBytes, access: kernel.access, regions });
}

export function runScenario(scenario: CrashScenario, options: CrashOptions): ScenarioResult {
  const start = prepare(scenario);
  const learnKernel = RegionManager.mount(SimDevice.fromImage(start), scenario.name, { checkInvariants: true });
  const states = [logicalState(learnKernel)];
  for (const step of scenario.steps) {
    step(learnKernel);
    states.push(logicalState(learnKernel));
  }

  const result: ScenarioResult = { scenario: scenario.name, points: 0, images: 0, failures: [] };
  const device = SimDevice.fromImage(start);
  const kernel = RegionManager.mount(device, scenario.name, { checkInvariants: true });
  let allowed: string[] = [];
  const verify = (dev: SimDevice): void => {
    const point = result.points++;
    const seed = (options.seed + point * 7919) >>> 0;
    let image = 0;
    for (const bytes of dev.crashImages({ unitsMax: options.unitsMax, samples: options.samples, seed })) {
      const failure = checkImage(bytes, allowed, image < options.recoveryCrashes);
      if (failure) result.failures.push({ scenario: scenario.name, point, image, seed, message: failure });
      image++;
    }
    result.images += image;
  };
  device.onFence(verify);
  scenario.steps.forEach((step, j) => {
    allowed = [states[j] as string, states[j + 1] as string];
    step(kernel);
    allowed = [states[j + 1] as string]; // the step returned: it must be durable
    verify(device);
  });
  device.onFence(null);
  return result;
}

/** The image a scenario's operation starts from: setup done and durable. */
function prepare(scenario: CrashScenario): Uint8Array {
  const before = scenario.formatOver?.();
  const device = before ? SimDevice.fromImage(before) : new SimDevice({ sizeBytes: scenario.poolBytes });
  RegionManager.format(device, FIXED_NOW);
  const kernel = RegionManager.mount(device, scenario.name);
  scenario.setup(kernel);
  return device.read(0, device.sizeBytes);
}

/** Mounts one crash image; returns what is wrong with it, or null. */
function checkImage(bytes: Uint8Array, allowed: string[], crashRecovery: boolean): string | null {
  const device = SimDevice.fromImage(bytes);
  if (crashRecovery) {
    const nested: Uint8Array[] = [];
    device.onFence((dev) => {
      for (const image of dev.crashImages({ unitsMax: 4, samples: 4, seed: nested.length + 1 })) nested.push(image);
    });
    const problem = mountAndCompare(device, allowed);
    if (problem) return problem;
    for (const image of nested) {
      const again = mountAndCompare(SimDevice.fromImage(image), allowed);
      if (again) return `after a crash during recovery: ${again}`;
    }
    return null;
  }
  return mountAndCompare(device, allowed);
}

function mountAndCompare(device: SimDevice, allowed: string[]): string | null {
  let kernel: RegionManager;
  try {
    kernel = RegionManager.mount(device, 'crash image');
  } catch (error) {
    return `mount failed: ${error instanceof RegionError ? error.message : String(error)}`;
  }
  device.onFence(null);
  const report = kernel.check();
  if (!report.ok) return `check failed: ${report.problems.map((p) => `${p.structure}@${p.offset}: ${p.message}`).join('; ')}`;
  const state = logicalState(kernel);
  if (!allowed.includes(state)) return `state is neither before nor after the operation: ${state}`;
  return null;
}
