// Whether a process is a regiond: the lock holder of a pool that does not answer on its
// socket is told apart this way (a regiond rebinding, or stuck) from an exclusive opener.

import fs from 'node:fs';

/** Whether pid runs regiond (detached, or `regions daemon`). */
export function isRegiond(pid: number): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((arg) => arg.endsWith('regiond.js')) || argv.includes('daemon');
  } catch {
    return false; // gone, or hidden (hidepid)
  }
}
