// An open pool, in either mode (DESIGN.md sections 7 and 8): the Pool interface over a
// transport to the pool's kernel, which runs in this process (exclusive mode) or in the
// pool's regiond (shared mode). Every call is one or a few synchronous system calls; the
// kernel's checks run where the kernel runs, against this process's credentials as the OS
// gives them. Mappings are the exception that keeps both modes fast: the kernel hands out
// its working copy as a descriptor and this process maps it (src/map/shared_copy.ts), so
// stores never cross the transport.

import type {
  CheckReport, CreateRegionOptions, OpenRegionOptions, Pool, PoolInfo, RegionInfo, SizeSpec,
} from '../api.js';
import { isRegionError, RegionError } from '../errors.js';
import { checkMode, checkName, checkNewName } from '../kernel/names.js';
import type { Mapping } from '../map/mapping.js';
import { releaseSharedCopies } from '../map/shared_copy.js';
import { userfaultfdAvailable } from '../map/fault_mechanism.js';
import type { Op, WireRef } from '../wire/protocol.js';
import { checkOptions } from '../util/options.js';
import { parseSize } from '../util/size.js';
import { RegionHandle } from './region_handle.js';
import type { FdResponse, KernelHost, Response, Transport } from './transport.js';

export class PoolHandle implements Pool {
  private readonly mappings = new Set<Mapping>();
  private readonly copyKeys = new Set<string>();

  /** @internal */
  constructor(
    readonly path: string,
    private readonly transport: Transport,
  ) {}

  /** Where the pool's kernel runs: in this process ('exclusive') or in its regiond ('shared'). */
  get mode(): 'exclusive' | 'shared' {
    return this.transport.mode;
  }

  /** The regiond serving this pool (its pid and start time, ms since the epoch); null in exclusive mode. */
  get server(): KernelHost | null {
    const server = this.transport.server;
    return server === null ? null : { pid: server.pid, startedAt: server.startedAt };
  }

  /** @internal one request to regiond */
  call<T>(op: Op, args: Record<string, unknown> = {}, data?: Uint8Array): Response<T> {
    return this.transport.request<T>(op, args, data);
  }

  /** @internal one request whose reply passes a descriptor, which the caller owns */
  callFd<T>(op: Op, args: Record<string, unknown> = {}): FdResponse<T> {
    return this.transport.requestFd<T>(op, args);
  }

  create(name: string, options: CreateRegionOptions): RegionInfo {
    checkOptions(options, ['size', 'mode'], 'create options');
    checkNewName(name);
    const size = parseSize(options?.size, 'region size');
    const mode = checkMode(options.mode ?? 0o600);
    return this.call<RegionInfo>('create', { name, size, mode }).result;
  }

  open(name: string, options: OpenRegionOptions = {}): RegionHandle {
    checkOptions(options, ['access', 'create'], 'open options');
    const access = options.access ?? 'rw';
    if (access !== 'rw' && access !== 'ro') throw new RegionError('INVALID', `access must be 'rw' or 'ro', got ${String(access)}`);
    if (options.create !== undefined) this.#createIfMissing(name, options.create);
    const { region, info } = this.call<{ region: WireRef; info: RegionInfo }>('open', { name: checkName(name), access }).result;
    return new RegionHandle(this, region, access, info.name);
  }

  /** The kernel's create is atomic: EXISTS means the region is there (made earlier, or just now by another process). */
  #createIfMissing(name: string, options: CreateRegionOptions): void {
    try {
      this.create(name, options);
    } catch (error) {
      if (!isRegionError(error, 'EXISTS')) throw error;
    }
  }

  stat(name: string): RegionInfo {
    return this.call<RegionInfo>('stat', { name: checkName(name) }).result;
  }

  /** Every region, sorted by name (fetched a page at a time). */
  list(): RegionInfo[] {
    const regions: RegionInfo[] = [];
    let after: string | undefined;
    for (;;) {
      const page = this.call<{ regions: RegionInfo[]; more: boolean }>('list', after === undefined ? {} : { after }).result;
      regions.push(...page.regions);
      const last = page.regions[page.regions.length - 1];
      if (!page.more || last === undefined) return regions;
      after = last.name;
    }
  }

  rename(from: string, to: string): void {
    this.call('rename', { from: checkName(from), to: checkNewName(to, 'new region name') });
  }

  resize(name: string, size: SizeSpec): void {
    this.call('resize', { name: checkName(name), size: parseSize(size, 'region size') });
  }

  remove(name: string): void {
    this.call('remove', { name: checkName(name) });
  }

  /** Sets a region's permission bits (its owner or root only). */
  chmod(name: string, mode: number): void {
    this.call('chmod', { name: checkName(name), mode: checkMode(mode) });
  }

  grow(size: SizeSpec): void {
    this.call('grow', { size: parseSize(size, 'pool size') });
  }

  info(): PoolInfo {
    const info = this.call<PoolInfo>('info').result;
    return { ...info, faultMechanism: userfaultfdAvailable() ? 'userfaultfd' : 'mprotect' }; // tracking runs here, not in regiond
  }

  check(options: { repair?: boolean } = {}): CheckReport {
    checkOptions(options, ['repair'], 'check options');
    return this.call<CheckReport>('check', { repair: options.repair ?? false }).result;
  }

  /**
   * Unmaps this pool's mappings and leaves the kernel. Shared mode: stores not pmsynced stay
   * in the working copy for the next pmsync. Exclusive mode: the kernel goes with the pool,
   * so they are dropped, as in a crash.
   */
  close(): void {
    if (this.transport.closed) return;
    for (const mapping of [...this.mappings]) mapping.unmap();
    releaseSharedCopies(this.copyKeys);
    try {
      this.call('close');
    } catch {
      // regiond is gone: there is nothing to leave
    }
    this.transport.close();
  }

  /** @internal a mapping made through this pool: unmapped at close */
  adopt(mapping: Mapping, copyKey: string): void {
    this.mappings.add(mapping);
    this.copyKeys.add(copyKey);
  }

  /** @internal */
  disown(mapping: Mapping): void {
    this.mappings.delete(mapping);
  }
}

