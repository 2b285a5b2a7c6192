// Every system the suite measures, ours and the peers, in one table. The runner reads it to
// plan trials; a trial child reads it to know which implementation, store and file system a
// system name means. Importing this file loads no peer.

export type Family = 'regions' | 'pmdk' | 'lmdb' | 'sqlite' | 'mmap' | 'limit';
/** tmpfs: where the pool lives (emulated PM); disk: an ordinary file system. */
export type FsKind = 'tmpfs' | 'disk';
export type NativeBinary = 'pmdk_peer' | 'limit_peer';

export interface SystemDef {
  name: string;
  label: string;
  family: Family;
  fs: FsKind;
  /** Systems with the same store share its files (a pool, a database) within a series. */
  store: string;
  /** Atomic and durable commits (the others are floors, not competitors). */
  atomic: boolean;
  /** One line for the report: what one commit does. */
  commit: string;
  /** Runs as a C program from bench/peers instead of a Node child. */
  native?: { binary: NativeBinary; variant: string; env?: Record<string, string> };
  /** Options of the Region System's map and pool. */
  regions?: { tracking: 'fault' | 'scan' | 'manual'; persistence: 'pmem' | 'msync' };
  lmdb?: { noSync: boolean };
  sqlite?: { synchronous: 'FULL' | 'NORMAL' };
  /** Only meaningful for sequential units (e.g. one PMDK range covering all of them). */
  seqOnly?: boolean;
}

const REGIONS_COMMIT = 'stores into the mapping, then one pmsync';

export const SYSTEMS: readonly SystemDef[] = [
  { name: 'regions-fault', label: 'Region System (fault)', family: 'regions', fs: 'tmpfs', store: 'regions-pmem', atomic: true, commit: `${REGIONS_COMMIT}; first stores fault`, regions: { tracking: 'fault', persistence: 'pmem' } },
  { name: 'regions-scan', label: 'Region System (scan)', family: 'regions', fs: 'tmpfs', store: 'regions-pmem', atomic: true, commit: `${REGIONS_COMMIT}; pmsync compares pages`, regions: { tracking: 'scan', persistence: 'pmem' } },
  { name: 'regions-manual', label: 'Region System (manual)', family: 'regions', fs: 'tmpfs', store: 'regions-pmem', atomic: true, commit: `${REGIONS_COMMIT}; markDirty per unit`, regions: { tracking: 'manual', persistence: 'pmem' } },
  { name: 'regions-manual-msync', label: 'Region System (manual, msync)', family: 'regions', fs: 'disk', store: 'regions-msync', atomic: true, commit: `${REGIONS_COMMIT}; pool on an ordinary file system, persistence msync`, regions: { tracking: 'manual', persistence: 'msync' } },
  { name: 'pmdk-per-unit', label: 'PMDK (range per unit)', family: 'pmdk', fs: 'tmpfs', store: 'pmdk', atomic: true, commit: 'one libpmemobj transaction: pmemobj_tx_add_range per unit, then the stores', native: { binary: 'pmdk_peer', variant: 'per-unit', env: { PMEM_IS_PMEM_FORCE: '1' } } },
  { name: 'pmdk-one-range', label: 'PMDK (one range)', family: 'pmdk', fs: 'tmpfs', store: 'pmdk', atomic: true, commit: 'one libpmemobj transaction: one pmemobj_tx_add_range over all units, then the stores', native: { binary: 'pmdk_peer', variant: 'one-range', env: { PMEM_IS_PMEM_FORCE: '1' } }, seqOnly: true },
  { name: 'lmdb-tmpfs-sync', label: 'lmdb-js (tmpfs, sync)', family: 'lmdb', fs: 'tmpfs', store: 'lmdb-tmpfs', atomic: true, commit: 'one transactionSync of puts (overlappingSync off, so it returns durable)', lmdb: { noSync: false } },
  { name: 'lmdb-tmpfs-nosync', label: 'lmdb-js (tmpfs, noSync)', family: 'lmdb', fs: 'tmpfs', store: 'lmdb-tmpfs', atomic: true, commit: 'one transactionSync of puts, noSync (atomic, not durable)', lmdb: { noSync: true } },
  { name: 'lmdb-disk-sync', label: 'lmdb-js (disk, sync)', family: 'lmdb', fs: 'disk', store: 'lmdb-disk', atomic: true, commit: 'one transactionSync of puts (overlappingSync off)', lmdb: { noSync: false } },
  { name: 'lmdb-disk-nosync', label: 'lmdb-js (disk, noSync)', family: 'lmdb', fs: 'disk', store: 'lmdb-disk', atomic: true, commit: 'one transactionSync of puts, noSync (atomic, not durable)', lmdb: { noSync: true } },
  { name: 'sqlite-full', label: 'SQLite WAL (FULL)', family: 'sqlite', fs: 'disk', store: 'sqlite-disk', atomic: true, commit: 'one transaction of UPDATEs of blobs, journal_mode WAL, synchronous FULL', sqlite: { synchronous: 'FULL' } },
  { name: 'sqlite-normal', label: 'SQLite WAL (NORMAL)', family: 'sqlite', fs: 'disk', store: 'sqlite-disk', atomic: true, commit: 'one transaction of UPDATEs of blobs, journal_mode WAL, synchronous NORMAL', sqlite: { synchronous: 'NORMAL' } },
  { name: 'mmap-tmpfs', label: 'mmap + msync (tmpfs)', family: 'mmap', fs: 'tmpfs', store: 'mmap-tmpfs', atomic: false, commit: 'stores into a mapped file, msync of each run of dirty pages (not atomic: a floor)' },
  { name: 'mmap-disk', label: 'mmap + msync (disk)', family: 'mmap', fs: 'disk', store: 'mmap-disk', atomic: false, commit: 'stores into a mapped file, msync of each run of dirty pages (not atomic: a floor)' },
  { name: 'limit-clwb', label: 'limit: copy + flush + sfence (C)', family: 'limit', fs: 'tmpfs', store: 'limit', atomic: false, commit: 'C: memcpy of each unit, cache-line write-back, one sfence', native: { binary: 'limit_peer', variant: 'clwb' } },
  { name: 'limit-nt', label: 'limit: nt stores + sfence (C)', family: 'limit', fs: 'tmpfs', store: 'limit', atomic: false, commit: 'C: non-temporal copy of each unit, one sfence', native: { binary: 'limit_peer', variant: 'nt' } },
  { name: 'limit-device', label: 'limit: FileDevice (JS)', family: 'limit', fs: 'tmpfs', store: 'limit', atomic: false, commit: "FileDevice 'pmem': write, flush each unit, one fence (from JavaScript)" },
];

export function systemNamed(name: string): SystemDef {
  const system = SYSTEMS.find((s) => s.name === name);
  if (system === undefined) throw new Error(`unknown benchmark system ${name}`);
  return system;
}

export const FAMILY_LABELS: Record<Family, string> = {
  regions: 'Region System',
  pmdk: 'PMDK libpmemobj',
  lmdb: 'lmdb-js',
  sqlite: 'SQLite (better-sqlite3)',
  mmap: 'mmap + msync',
  limit: 'physical limit',
};
