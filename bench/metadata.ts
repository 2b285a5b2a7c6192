// Metadata benchmark: lines flushed and fences per namespace operation (counted on the
// device, so exact and machine-independent), and mount time as the region count and the
// allocated data grow. Writes a Markdown report (stdout, or --out FILE) and --json.
// The full suite (bench/run.ts) includes both: workloads opcosts and mount.
//
//   node dist/bench/metadata.js [--quick] [--json] [--out FILE]

import fs from 'node:fs';
import os from 'node:os';
import { mountTimes, opCosts, type MountPoint, type OpCost } from './trials/metadata.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const outIndex = process.argv.indexOf('--out');
const outFile = outIndex > 0 ? process.argv[outIndex + 1] : undefined;

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
const mounts = mountTimes(quick);
if (args.has('--json')) process.stdout.write(JSON.stringify({ costs, mounts }, null, 2) + '\n');
else if (outFile) fs.writeFileSync(outFile, report(costs, mounts));
else process.stdout.write(report(costs, mounts));
