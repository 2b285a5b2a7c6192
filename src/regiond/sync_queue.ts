// Group commit: the pmsyncs of one region that reach regiond together are one shootdown and
// one commit. Other requests are served in the 'data' callback that completes their frame; a
// pmsync waits instead for the end of the event loop's turn (setImmediate runs after the poll
// phase has delivered the frames of every readable connection), and then every waiting
// pmsync of a region is served at once. Its callers are not signalled (each waits for its
// reply, having reported its own pages: WorkingCopy.pmsync), and each gets the stats. A
// pmsync commits every page of the region dirtied by anyone, so a caller that waited for
// another's commit loses nothing: its pages were reported before it asked.
//
// A pmsync that has nobody to wait for is served at once, in its own 'data' callback: none
// is waiting, none is being answered, and no other connection has bytes in its socket (a
// poll that does not wait; the poll phase delivers only what was readable when it began, so
// anything that could still join this turn is in some socket now). Waiting for the turn's
// end would then group it with nothing and only delay its reply.

import type { SyncStats } from '../api.js';
import { RegionError } from '../errors.js';
import type { Client } from '../syscall/client_record.js';
import type { Syscalls } from '../syscall/syscalls.js';
import { assert } from '../util/assert.js';
import type { Request } from '../wire/protocol.js';

/** The stats of a pmsync, or the error of the whole commit or of this caller alone. */
export type SyncOutcome = { ok: true; stats: SyncStats } | { ok: false; error: unknown };

/** A pmsync request waiting for its turn, and where its answer goes. */
export interface SyncWaiter {
  client: Client;
  request: Request & { op: 'pmsync' };
  /** False once its connection has ended: it is left out (its process may be gone). */
  live(): boolean;
  answer(outcome: SyncOutcome): void;
}

export class SyncQueue {
  private waiting: SyncWaiter[] = [];
  /** A group's callers are being answered: a pmsync one of them had held back waits for the turn. */
  private answering = false;
  private readonly runTurn = (): void => this.run();

  constructor(
    private readonly syscalls: Syscalls,
    /** Whether a connection other than this client's has bytes waiting to be read. */
    private readonly othersReadable: (client: Client) => boolean,
  ) {}

  add(waiter: SyncWaiter): void {
    const alone = this.waiting.length === 0 && !this.answering && !this.othersReadable(waiter.client);
    if (alone) return this.serve([waiter]);
    this.waiting.push(waiter);
    if (this.waiting.length === 1) setImmediate(this.runTurn);
  }

  private run(): void {
    const groups = new Map<string, SyncWaiter[]>();
    for (const waiter of this.waiting.splice(0)) {
      if (!waiter.live()) continue;
      const { index, generation } = waiter.request.region;
      const key = `${index}:${generation}`;
      groups.set(key, [...(groups.get(key) ?? []), waiter]);
    }
    for (const group of groups.values()) this.serve(group);
  }

  private serve(group: SyncWaiter[]): void {
    const first = group[0];
    assert(first !== undefined, 'sync queue: a group has a first waiter');
    let outcomes: SyncOutcome[];
    try {
      const callers = group.map(({ client, request }) => ({ client, reported: request.reported === true }));
      const results = this.syscalls.syncTogether('pmsync', first.request.region, callers);
      outcomes = results.map((result) => (result instanceof RegionError
        ? { ok: false, error: result }
        : { ok: true, stats: result }));
    } catch (error) {
      outcomes = group.map(() => ({ ok: false, error })); // the commit failed: for every caller alike
    }
    this.answering = true;
    try {
      group.forEach((waiter, i) => {
        const outcome = outcomes[i];
        assert(outcome !== undefined, 'sync queue: one outcome per caller');
        waiter.answer(outcome);
      });
    } finally {
      this.answering = false;
    }
  }
}
