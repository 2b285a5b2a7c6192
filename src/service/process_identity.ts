// A process is named by its pid and its start time (field 22 of /proc/PID/stat, in clock
// ticks since boot), so a reused pid is not mistaken for the process that had it before.
import fs from 'node:fs';

/** The start time of pid, or -1 if it is gone or a zombie (exited, not yet reaped). */
export function processStartTime(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return -1; // field 3: the process state
    return Number(fields[19] ?? -1); // field 22 overall; fields[0] is field 3
  } catch {
    return -1;
  }
}
