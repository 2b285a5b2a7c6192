// The state every operation of the region manager shares, and the one way to change the
// pool: a transaction staged in DRAM and committed through the journal.
//
// Fail-stop: a commit that fails part-way (a flush, fence or msync that reports a device
// error, or anything else thrown between the first store of the record and the end of the
// apply) leaves PM recoverable by the journal, but this DRAM state undefined: the update's
// fresh blocks are claimed, the journal's sequence may or may not have advanced, the region
// table may not match the slot on PM. Carrying on could write a record over the one recovery
// needs. So the first such error stops the kernel: `failure` holds it and every later call
// is refused with RegionError IO naming it; reopening the pool recovers it from the journal.

import type { Slot } from '../format/slot.js';
import type { RecordKind } from '../format/journal_record.js';
import type { Superblock } from '../format/superblock.js';
import { RegionError } from '../errors.js';
import type { PmDevice } from '../pm/device.js';
import type { Allocator } from './allocator.js';
import type { Journal } from './journal.js';
import type { DamagedTree } from './quarantine.js';
import type { RegionTable } from './region_table.js';
import { checkMounted } from './check.js';
import { InvariantViolation } from './invariants.js';
import { Transaction } from './transaction.js';

export interface MountReport {
  replayedSequence: number | null;
  superblockCopiesRewritten: number[];
  /** The format version the pool had if mount upgraded it (upgrade.ts), else null. */
  upgradedFrom: number | null;
}

export interface KernelOptions {
  /**
   * Debug mode: re-check every on-PM invariant (invariants.ts) after every commit and stop
   * the kernel at the first violation. A full walk of the pool per commit: for tests and for
   * studying a pool, not for speed.
   */
  checkInvariants?: boolean;
}

/** Identifies one incarnation of a region: a slot reused after remove gets a new generation. */
export interface RegionRef {
  index: number;
  generation: number;
}

/** Stages a metadata update: changes `next` (a copy of the slot) and stages whatever else it writes. */
type Stage = (tx: Transaction, next: Slot) => void;

export abstract class KernelState {
  #failure: RegionError | null = null;

  protected constructor(
    readonly device: PmDevice,
    protected sb: Superblock,
    protected allocator: Allocator,
    protected readonly journal: Journal,
    protected readonly table: RegionTable,
    protected readonly pageCounts: Map<number, number>,
    /** Quarantined regions and the blocks each owns (quarantine.ts). */
    protected readonly damaged: Map<number, DamagedTree>,
    readonly label: string,
    readonly mountReport: MountReport,
    private readonly options: KernelOptions,
  ) {}

  /**
   * The error that stopped this kernel (a commit that failed part-way), or null while it
   * works. Once set, every call is refused with RegionError IO naming it; a server holding
   * the kernel should exit so that the next open mounts (and recovers) the pool afresh.
   */
  get failure(): RegionError | null {
    return this.#failure;
  }

  /** Every entry point calls this first: a stopped kernel does nothing more. */
  protected usable(): void {
    const first = this.#failure;
    if (first === null) return;
    throw new RegionError('IO', `${this.label}: the pool's kernel stopped at a failed commit and refuses every call `
      + `until the pool is reopened; the first error: ${first.message}`, { cause: first });
  }

  /**
   * Runs body, which stores to PM as part of a commit. If it throws, the kernel stops (see
   * the top of this file); the error is rethrown as IO naming what failed.
   */
  protected failStop<T>(what: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      const detail = describe(error);
      this.#failure = new RegionError('IO', `${this.label}: ${what} failed part-way (${detail}); the pool on PM is `
        + 'recoverable, reopen it', { cause: error });
      throw this.#failure;
    }
  }

  protected begin(kind: RecordKind, slot: number, generation: number, epoch: number): Transaction {
    // Transactions run one at a time, so the next sequence now is the one it commits as.
    const sequence = this.journal.newestSequence + 1;
    return new Transaction(kind, this.device, this.allocator, slot, generation, epoch, sequence);
  }

  /**
   * Runs body to stage tx, then commits it. A failure while staging undoes the transaction
   * (nothing reachable was written); a failure inside the commit stops the kernel.
   */
  protected transact<T>(tx: Transaction, body: () => T): T {
    let result: T;
    try {
      result = body();
    } catch (error) {
      tx.abort();
      throw error;
    }
    if (!tx.empty) this.failStop('a journal commit', () => this.journal.commit(tx));
    else tx.finish();
    this.verify('a journal commit');
    return result;
  }

  /**
   * Debug mode (KernelOptions.checkInvariants): after `what`, PM and the DRAM state must keep
   * every invariant; a violation stops the kernel like a failed commit, naming the rule.
   */
  protected verify(what: string): void {
    if (this.options.checkInvariants !== true) return;
    const problem = checkMounted(this.device, this.sb, this.allocator).problems[0];
    if (!problem) return;
    this.#failure = new InvariantViolation(problem.rule, `${this.label}: after ${what}, ${problem.structure} at offset `
      + `${problem.offset} breaks the invariant ${problem.rule}: ${problem.message}`);
    throw this.#failure;
  }

  /** One metadata update of a region: stage changes `next` (a copy of slot); the slot is restaged whole. */
  protected commitSlot(kind: RecordKind, ref: RegionRef, slot: Slot, stage: Stage): Slot {
    const updated: Slot = { ...slot };
    const tx = this.begin(kind, ref.index, slot.generation, slot.epoch);
    this.transact(tx, () => {
      stage(tx, updated);
      this.table.stageSlot(tx, ref.index, updated);
    });
    this.table.remember(ref.index, updated);
    return updated;
  }
}

/** An error as `CODE: message` (the errno name of a failed system call, when it has one). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return `${typeof code === 'string' ? code : error.name}: ${error.message}`;
}
