// What the demo's workers tell the demo, one line each on stdout (of the worker process in
// shared mode, of the host process in thread mode):
//   host PID                          thread mode: the host (pool kernel + worker threads) runs
//   ready W PID                       worker W has mapped the ledger
//   intent W SEQ HASH                 W holds the lock and is about to pmsync the ledger, whose
//                                     state (sync sequence SEQ) hashes to HASH
//   synced W SEQ PAGES LINES FENCES NS   that pmsync returned: SEQ is durable
//   takeover W DEADPID UNDONE         W took the lock over from dead DEADPID and rolled back
//                                     UNDONE logged stores of its unfinished update
//   failed W MESSAGE                  W stopped on an error (e.g. regiond is gone)
//   done W                            W reached its deadline

export type DemoReport =
  | { kind: 'host'; pid: number }
  | { kind: 'ready'; worker: number; pid: number }
  | { kind: 'intent'; worker: number; seq: number; hash: string }
  | {
      kind: 'synced'; worker: number; seq: number; pages: number; linesFlushed: number; fences: number; ns: number;
    }
  | { kind: 'takeover'; worker: number; deadPid: number; undone: number }
  | { kind: 'failed'; worker: number; message: string }
  | { kind: 'done'; worker: number };

export function formatReport(report: DemoReport): string {
  switch (report.kind) {
    case 'host': return `host ${report.pid}`;
    case 'ready': return `ready ${report.worker} ${report.pid}`;
    case 'intent': return `intent ${report.worker} ${report.seq} ${report.hash}`;
    case 'synced': {
      const { worker, seq, pages, linesFlushed, fences, ns } = report;
      return `synced ${worker} ${seq} ${pages} ${linesFlushed} ${fences} ${ns}`;
    }
    case 'takeover': return `takeover ${report.worker} ${report.deadPid} ${report.undone}`;
    case 'failed': return `failed ${report.worker} ${report.message.replace(/\s+/g, ' ')}`;
    case 'done': return `done ${report.worker}`;
  }
}

/** The report on one line, or null for anything else (a stray line is not a report). */
export function parseReport(line: string): DemoReport | null {
  const [kind, ...fields] = line.split(' ');
  const n = fields.slice(0, 6).map(Number);
  const ints = (count: number): boolean => fields.length >= count && n.slice(0, count).every(Number.isSafeInteger);
  switch (kind) {
    case 'host': return ints(1) ? { kind, pid: n[0]! } : null;
    case 'ready': return ints(2) ? { kind, worker: n[0]!, pid: n[1]! } : null;
    case 'intent':
      return ints(2) && fields[2] !== undefined ? { kind, worker: n[0]!, seq: n[1]!, hash: fields[2] } : null;
    case 'synced':
      if (!ints(6)) return null;
      return { kind, worker: n[0]!, seq: n[1]!, pages: n[2]!, linesFlushed: n[3]!, fences: n[4]!, ns: n[5]! };
    case 'takeover': return ints(3) ? { kind, worker: n[0]!, deadPid: n[1]!, undone: n[2]! } : null;
    case 'failed': return ints(1) ? { kind, worker: n[0]!, message: fields.slice(1).join(' ') } : null;
    case 'done': return ints(1) ? { kind, worker: n[0]! } : null;
    default: return null;
  }
}
