// The demo's shared state: a ledger in one region, updated by several workers under a
// RegionLock. Money moves between accounts on different pages, so one pmsync commits several
// pages and an invariant spans them: the balances always sum to the same total.
//
//   page 0     header (little-endian)
//              0   u32 x2   the RegionLock (not hashed: waiters flip its bit outside the lock)
//              8   u32      magic "LDGR"
//              12  u32      accounts
//              16  u32      workers
//              24  u64      sync sequence: raised under the lock just before each pmsync
//              32  u64      transfers, all workers
//              40  u64      total: what the balances must sum to
//              64  u32      undo entries in use (0 = no update in progress)
//              72  16 x N   undo entries: u32 offset, u32 zero, u64 old value
//   page 1+a   account a: u64 balance
//   page 1+A+w worker w: u64 lock holds, u64 transfers, u64 syncs begun, u64 takeovers
//
// Every update goes through the undo log: the old value of each u64 is logged (and published
// with an Atomics store of the entry count) before it is overwritten, and the count is reset
// when the update is complete. A worker that takes the lock over from a dead one rolls back
// whatever it left half-done. A pmsync is taken holding the lock with the log empty, so the
// ledger at that instant is known exactly (its hash is what the worker reports).

import { createHash } from 'node:crypto';
import { PAGE_BYTES } from '../constants.js';
import { assert } from '../util/assert.js';

export const LEDGER_MAGIC = 0x52474c44; // "LDGR"
export const LEDGER_LOCK_WORD = 0;
export const LEDGER_HASHED_FROM = 8;
export const LEDGER_ACCOUNTS = 12;
export const LEDGER_OPENING_BALANCE = 1000n;
export const UNDO_ENTRIES_MAX = 32;
export const TRANSFER_AMOUNT_MAX = 100;

const H = {
  magic: 8, accounts: 12, workers: 16, seq: 24, transfers: 32, total: 40, undoCount: 64, undoEntries: 72,
} as const;
const UNDO_ENTRY_BYTES = 16;
const W = { holds: 0, transfers: 8, syncs: 16, takeovers: 24 } as const;

export function ledgerBytes(workers: number): number {
  return (1 + LEDGER_ACCOUNTS + workers) * PAGE_BYTES;
}

export function accountOffset(account: number): number {
  return (1 + account) * PAGE_BYTES;
}

export function workerOffset(worker: number): number {
  return (1 + LEDGER_ACCOUNTS + worker) * PAGE_BYTES;
}

/** Formats a zeroed ledger in memory (the caller pmsyncs). */
export function formatLedger(buffer: ArrayBuffer, workers: number): void {
  const view = new DataView(buffer);
  assert(buffer.byteLength >= ledgerBytes(workers), 'ledger: the region holds every page');
  view.setUint32(H.accounts, LEDGER_ACCOUNTS, true);
  view.setUint32(H.workers, workers, true);
  for (let a = 0; a < LEDGER_ACCOUNTS; a++) view.setBigUint64(accountOffset(a), LEDGER_OPENING_BALANCE, true);
  view.setBigUint64(H.total, LEDGER_OPENING_BALANCE * BigInt(LEDGER_ACCOUNTS), true);
  view.setUint32(H.magic, LEDGER_MAGIC, true);
}

/** The identity of the ledger's state: SHA-256 (first 16 hex digits) of every byte but the lock. */
export function ledgerHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes.subarray(LEDGER_HASHED_FROM)).digest('hex').slice(0, 16);
}

export function ledgerSeq(bytes: Uint8Array): number {
  return Number(view(bytes).getBigUint64(H.seq, true));
}

/** Every invariant of a ledger at rest (no update in progress); returns what fails, [] if none. */
export function ledgerProblems(bytes: Uint8Array): string[] {
  const v = view(bytes);
  if (v.getUint32(H.magic, true) !== LEDGER_MAGIC) return ['the region does not hold a ledger (bad magic)'];
  const workers = v.getUint32(H.workers, true);
  const problems: string[] = [];
  let sum = 0n;
  for (let a = 0; a < LEDGER_ACCOUNTS; a++) sum += v.getBigUint64(accountOffset(a), true);
  const total = v.getBigUint64(H.total, true);
  if (sum !== total) problems.push(`balances sum to ${sum}, not ${total}`);
  const perWorker = Array.from({ length: workers }, (_, w) => v.getBigUint64(workerOffset(w) + W.transfers, true));
  const transfers = v.getBigUint64(H.transfers, true);
  if (perWorker.reduce((s, n) => s + n, 0n) !== transfers) {
    problems.push(`workers' transfers ${perWorker.join(' + ')} != ${transfers} in the header`);
  }
  let syncs = 0n;
  for (let w = 0; w < workers; w++) syncs += v.getBigUint64(workerOffset(w) + W.syncs, true);
  const seq = v.getBigUint64(H.seq, true);
  if (syncs !== seq) problems.push(`workers began ${syncs} pmsyncs but the sequence is ${seq}`);
  const undo = v.getUint32(H.undoCount, true);
  if (undo !== 0) problems.push(`an update is half done (${undo} undo entries)`);
  return problems;
}

export interface LedgerSummary {
  total: number;
  transfers: number;
  transfersByWorker: number[];
  takeovers: number;
  seq: number;
}

export function ledgerSummary(bytes: Uint8Array): LedgerSummary {
  const v = view(bytes);
  const workers = v.getUint32(H.workers, true);
  const field = (w: number, f: number): number => Number(v.getBigUint64(workerOffset(w) + f, true));
  return {
    total: Number(v.getBigUint64(H.total, true)),
    transfers: Number(v.getBigUint64(H.transfers, true)),
    transfersByWorker: Array.from({ length: workers }, (_, w) => field(w, W.transfers)),
    takeovers: Array.from({ length: workers }, (_, w) => field(w, W.takeovers)).reduce((s, n) => s + n, 0),
    seq: Number(v.getBigUint64(H.seq, true)),
  };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** One worker's updates of a mapped ledger; call its methods only while holding the lock. */
export class LedgerWriter {
  private readonly view: DataView;
  private readonly count: Int32Array;

  constructor(
    shared: SharedArrayBuffer,
    private readonly worker: number,
  ) {
    this.view = new DataView(shared);
    this.count = new Int32Array(shared, H.undoCount, 1);
    assert(this.view.getUint32(H.magic, true) === LEDGER_MAGIC, 'ledger: formatted before workers start');
  }

  /** After a takeover: undoes the dead holder's unfinished update; returns how many u64s it restored. */
  rollBack(): number {
    const entries = Atomics.load(this.count, 0);
    assert(entries >= 0 && entries <= UNDO_ENTRIES_MAX, 'ledger: undo count in range');
    for (let i = entries - 1; i >= 0; i--) {
      const at = H.undoEntries + i * UNDO_ENTRY_BYTES;
      this.view.setBigUint64(this.view.getUint32(at, true), this.view.getBigUint64(at + 8, true), true);
    }
    Atomics.store(this.count, 0, 0);
    return entries;
  }

  /**
   * One lock hold's work: `transfers` random transfers (amount and accounts from `random`),
   * this worker's counters, and the next sync sequence number, as one logged update.
   * `takeover` counts a lock taken over from a dead holder. Returns the new sequence.
   */
  update(transfers: number, random: () => number, takeover: boolean): number {
    assert(Atomics.load(this.count, 0) === 0, 'ledger: no update in progress at the start of a hold');
    const me = workerOffset(this.worker);
    for (let t = 0; t < transfers; t++) {
      const from = Math.floor(random() * LEDGER_ACCOUNTS);
      const to = (from + 1 + Math.floor(random() * (LEDGER_ACCOUNTS - 1))) % LEDGER_ACCOUNTS;
      const balance = this.view.getBigUint64(accountOffset(from), true);
      const amount = BigInt(Math.min(Number(balance), 1 + Math.floor(random() * TRANSFER_AMOUNT_MAX)));
      this.add(accountOffset(from), -amount);
      this.add(accountOffset(to), amount);
      this.add(H.transfers, 1n);
      this.add(me + W.transfers, 1n);
    }
    this.add(me + W.holds, 1n);
    if (takeover) this.add(me + W.takeovers, 1n);
    this.add(me + W.syncs, 1n);
    const seq = this.add(H.seq, 1n);
    Atomics.store(this.count, 0, 0); // the update is complete
    return Number(seq);
  }

  /** Logs the old value, then stores old + delta; returns the new value. */
  private add(offset: number, delta: bigint): bigint {
    const entries = Atomics.load(this.count, 0);
    assert(entries < UNDO_ENTRIES_MAX, 'ledger: the undo log has room (transfers per hold are bounded)');
    const old = this.view.getBigUint64(offset, true);
    const at = H.undoEntries + entries * UNDO_ENTRY_BYTES;
    this.view.setUint32(at, offset, true);
    this.view.setBigUint64(at + 8, old, true);
    Atomics.store(this.count, 0, entries + 1); // the entry is in the log before the value changes
    const value = old + delta;
    assert(value >= 0n, 'ledger: no balance or counter goes negative');
    this.view.setBigUint64(offset, value, true);
    return value;
  }
}
