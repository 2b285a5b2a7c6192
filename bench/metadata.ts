// Metadata benchmark: lines flushed and fences per namespace operation (counted on the
// device, so exact and machine-independent), and mount time as the region count and the
// allocated data grow. Writes a Markdown report (stdout, or --out FILE) and --json.
//
//   node dist/bench/metadata.js [--quick] [--json] [--out FILE]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RegionManager } from '../src/kernel/region_manager.js';
import { FileDevice } from '../src/pm/file_device.js';
import { SimDevice } from '../src/pm/sim_device.js';

const OWNER = { mode: 0o600, uid: 0, gid: 0 };
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const outIndex = process.argv.indexOf('--out');
const outFile = outIndex > 0 ? process.argv[outIndex + 1] : undefined;

interface OpCost {
  operation: string;
  linesFlushed: number;
  fences: number;
  bytesWritten: number;
}

function opCosts(): OpCost[] {
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

interface MountPoint {
  regions: number;
  dataMiB: number;
  mountMs: number;
}

function mountTimes(): MountPoint[] {
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

function report(costs: OpCost[], mounts: MountPoint[]): string {
  const lines = ['# Metadata operations and mount', '', `Machine: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}.`, ''];
  lines.push('## Cost per operation (counted on the device)', '', '| operation | lines flushed | fences | bytes written |', '|---|---:|---:|---:|');
  for (const c of costs) lines.push(`| ${c.operation} | ${c.linesFlushed} | ${c.fences} | ${c.bytesWritten} |`);
  lines.push('', '## Mount time (median of 3, pool on tmpfs)', '', '| regions | allocated data | mount ms |', '|---:|---:|---:|');
  for (const m of mounts) lines.push(`| ${m.regions.toLocaleString('en-US')} | ${m.dataMiB} MiB | ${m.mountMs.toFixed(1)} |`);
  lines.push('', 'Mount walks the region table and every page table to rebuild the free map, so it grows with the number of regions and of page-table blocks (one per 2 MiB of data), not with the data itself.');
  return lines.join('\n') + '\n';
}

const costs = opCosts();
const mounts = mountTimes();
if (args.has('--json')) process.stdout.write(JSON.stringify({ costs, mounts }, null, 2) + '\n');
else if (outFile) fs.writeFileSync(outFile, report(costs, mounts));
else process.stdout.write(report(costs, mounts));
