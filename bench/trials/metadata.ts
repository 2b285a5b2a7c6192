// Metadata costs: lines flushed and fences per namespace operation, counted on a SimDevice
// (exact and machine-independent), and the mount times of bench/metadata.ts. The suite runs
// opCosts as workload opcosts; bench/metadata.ts prints both on their own.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RegionManager } from '../../src/kernel/region_manager.js';
import { FileDevice } from '../../src/pm/file_device.js';
import { SimDevice } from '../../src/pm/sim_device.js';

const OWNER = { mode: 0o600, uid: 0, gid: 0 };

export interface OpCost {
  operation: string;
  linesFlushed: number;
  fences: number;
  bytesWritten: number;
}

export function opCosts(): OpCost[] {
  const device = new SimDevice({ sizeBytes: 64 * 1024 * 1024 });
  RegionManager.format(device);
  const kernel = RegionManager.mount(device, 'bench');
  kernel.create('warm', 4096, OWNER); // the first create also builds the table's middle block
  const costs: OpCost[] = [];
  const measure = (operation: string, run: () => void): void => {
    device.counters.reset();
    run();
    costs.push({ operation, ...device.counters.snapshot() });
  };
  measure('create', () => void kernel.create('a', 1 << 20, OWNER));
  measure('rename', () => kernel.rename(kernel.lookup('a'), 'b'));
  kernel.commitPages(kernel.lookup('b'), Array.from({ length: 64 }, (_, page) => ({ page, bytes: new Uint8Array(4096).fill(page) })));
  measure('resize grow (1 MiB -> 8 MiB, +1 level)', () => kernel.resize(kernel.lookup('b'), 8 << 20));
  measure('resize shrink (8 MiB -> 100 KiB)', () => kernel.resize(kernel.lookup('b'), 100 << 10));
  measure('remove (25 data pages)', () => kernel.remove(kernel.lookup('b')));
  measure('grow pool (64 -> 128 MiB, journal moves)', () => kernel.grow(128 << 20));
  measure('grow pool (128 -> 132 MiB)', () => kernel.grow(132 << 20));
  return costs;
}

export interface MountPoint {
  regions: number;
  dataMiB: number;
  mountMs: number;
}

/** Mount time (median of 3) of kernel-built pools on tmpfs, as the region count and data grow. */
export function mountTimes(quick: boolean): MountPoint[] {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-bench-'));
  const points: MountPoint[] = [];
  const regionCounts = quick ? [1000, 10_000] : [1000, 10_000, 100_000];
  const dataSizes = quick ? [64] : [64, 256, 1024];
  try {
    for (const regions of regionCounts) points.push(mountPoint(dir, regions, 0));
    for (const dataMiB of dataSizes) points.push(mountPoint(dir, 1, dataMiB));
    if (!quick) points.push(mountPoint(dir, 100_000, 1024));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return points;
}

function mountPoint(dir: string, regions: number, dataMiB: number): MountPoint {
  const file = path.join(dir, `p-${regions}-${dataMiB}.pool`);
  const poolBytes = (dataMiB + 64 + Math.ceil(regions / 2000)) * 1024 * 1024 * 1.1;
  const device = FileDevice.create(file, { sizeBytes: Math.ceil(poolBytes / 4096) * 4096, persistence: 'pmem' });
  RegionManager.format(device);
  const kernel = RegionManager.mount(device, file);
  for (let i = 0; i < regions; i++) kernel.create(`r${i}`, 4096, OWNER);
  if (dataMiB > 0) {
    const ref = kernel.lookup(kernel.create('data', dataMiB << 20, OWNER).name);
    const page = new Uint8Array(4096).fill(7);
    const batch = 4096;
    for (let first = 0; first < (dataMiB << 20) / 4096; first += batch) {
      kernel.commitPages(ref, Array.from({ length: batch }, (_, i) => ({ page: first + i, bytes: page })));
    }
  }
  device.close();
  const times: number[] = [];
  for (let trial = 0; trial < 3; trial++) {
    const again = new FileDevice(file, { persistence: 'pmem' });
    const start = process.hrtime.bigint();
    RegionManager.mount(again, file);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    again.close();
  }
  fs.rmSync(file);
  times.sort((a, b) => a - b);
  return { regions, dataMiB, mountMs: times[1] ?? 0 };
}
