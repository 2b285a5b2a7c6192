// Printing: one JSON document on stdout with --json, else human-readable lines and tables
// (sizes with formatSize, times as ISO 8601). Errors never come through here: main.ts prints
// them on stderr.

import { formatNs } from '../util/duration.js';
import type { CheckProblem, PoolAccess, PoolInfo, RegionInfo, SyncStats } from '../api.js';
import { describeAccess } from '../kernel/access.js';
import { groupName } from '../util/groups.js';
import { formatSize } from '../util/size.js';
import type { Globals } from './context.js';
import { count } from '../util/count.js';

/** Prints value as JSON, or the human lines. A command prints the object it made or changed. */
export function emit(globals: Globals, value: unknown, human: () => string[]): void {
  const text = globals.json ? jsonText(value) : human().join('\n');
  if (text.length > 0) process.stdout.write(`${text}\n`);
}

/** The JSON the CLI prints: permission bits (a region's mode, a socket's mode) as octal strings, "0640". */
export function jsonText(value: unknown): string {
  const octalModes = (key: string, field: unknown): unknown =>
    (key === 'mode' || key === 'socketMode') && typeof field === 'number' ? octal(field) : field;
  return JSON.stringify(value, octalModes, 2);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export { count };

export function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** Widest NAME column of `ls`: a longer name is cut with an ellipsis (stat and --json show it whole). */
const NAME_COLUMN_MAX = 40;

/**
 * A name as a terminal may show it: control characters and backslashes escaped (\xNN, \\),
 * so a name made before names were restricted cannot move the cursor or hide a character.
 */
export function displayName(name: string): string {
  const escape = (c: string): string => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return name.replace(/[\\\u0000-\u001f\u007f-\u009f]/g, escape);
}

function columnName(name: string): string {
  const shown = displayName(name);
  return shown.length <= NAME_COLUMN_MAX ? shown : `${shown.slice(0, NAME_COLUMN_MAX - 1)}…`;
}

export function regionTable(regions: RegionInfo[]): string[] {
  const header = ['NAME', 'SIZE', 'ALLOCATED', 'MODE', 'UID', 'GID', 'MODIFIED', 'EPOCH', 'STATE'];
  const rows = regions.map((r) => [
    columnName(r.name),
    formatSize(r.sizeBytes),
    formatSize(r.allocatedBytes),
    octal(r.mode),
    String(r.uid),
    String(r.gid),
    isoTime(r.modifiedAt),
    String(r.epoch),
    regionState(r),
  ]);
  return table([header, ...rows]);
}

export function regionLines(r: RegionInfo): string[] {
  return table([
    ['name', displayName(r.name)],
    ['id', `${r.id} (generation ${r.generation})`],
    ['size', `${formatSize(r.sizeBytes)} (${r.sizeBytes} bytes)`],
    ['allocated', formatSize(r.allocatedBytes)],
    ['mode', octal(r.mode)],
    ['owner', `uid ${r.uid}, gid ${r.gid}`],
    ['created', isoTime(r.createdAt)],
    ['modified', isoTime(r.modifiedAt)],
    ['epoch', String(r.epoch)],
    ['state', regionState(r)],
  ]);
}

/** "damaged" for a region fsck --repair quarantined (readable pages only: `regions read`). */
function regionState(r: RegionInfo): string {
  return r.damaged ? 'damaged (read only what remains; then rm)' : 'ok';
}

export function poolLines(p: PoolInfo): string[] {
  return table([
    ['pool', p.path],
    ['version', String(p.version)],
    ['capacity', formatSize(p.capacityBytes)],
    ['used', formatSize(p.usedBytes)],
    ['free', formatSize(p.freeBytes)],
    ['block size', formatSize(p.blockBytes)],
    ['regions', String(p.regions)],
    ['slots', `${p.slots.used} used, ${p.slots.allocated} allocated, ${p.slots.max} max`],
    ['journal', formatSize(p.journalBytes)],
    ['persistence', `${p.persistence} (chosen at each open; the pool does not record mkpool's --persistence)`],
    ['mode', p.mode],
    ['access', accessLine(p.access)],
    ['fault tracking', p.faultMechanism],
  ]);
}

/** "regiond admits: socket mode 0660, group 1001 (staff)", naming the group if the system knows it. */
export function accessLine(access: PoolAccess): string {
  return `regiond admits ${describeAccess(access, groupName)}${access.socketMode === 0o600 ? ' (the owner and root only)' : ''}`;
}

export function syncLine(stats: SyncStats): string {
  const counts = [count(stats.pages, 'page'), `${count(stats.linesFlushed, 'line')} flushed`, count(stats.fences, 'fence')];
  return `epoch ${stats.epoch}: ${counts.join(', ')}, ${formatNs(stats.ns)}`;
}

export function problemLine(p: CheckProblem): string {
  const state = p.repaired === true ? 'repaired' : p.repairable ? 'repairable with --repair' : 'not repairable';
  return `${p.structure} at offset ${p.offset}: ${p.message} (${state})`;
}
