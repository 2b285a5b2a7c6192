// A persistent key-value map living in a region: a fixed-size open-addressing hash table of
// fixed-size records, updated in place with ordinary stores. Each put or delete is one
// pmsync, so after a crash the map holds exactly the operations that returned (plus the one
// in flight, if its pmsync had reached its commit point): never half a record.
//
//   node dist/examples/kv-map.js POOL put KEY VALUE
//   node dist/examples/kv-map.js POOL get KEY            prints the value (exit 1 if absent)
//   node dist/examples/kv-map.js POOL delete KEY
//   node dist/examples/kv-map.js POOL list               prints the map as one JSON object
//   node dist/examples/kv-map.js POOL batch              stdin lines `put KEY VALUE` or
//                                                        `delete KEY`; prints `ok N` once line
//                                                        N is durable
// Region "kv" layout (little-endian):
//   page 0           magic "KVM1" (u32), version (u32), slots (u32), records in use (u32)
//   4096 + 256 i     slot i: state (u8: 0 empty, 1 used, 2 deleted), key length (u8),
//                    value length (u16), key (32 bytes), value (200 bytes), 20 bytes zero

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createPool, openPool, RegionError, type MappingApi, type Pool } from 'region-system';

const MAGIC = 0x314d564b; // "KVM1"
const HEADER_BYTES = 4096;
const SLOT_BYTES = 256;
const KEY_BYTES_MAX = 32;
const VALUE_BYTES_MAX = 200;
const KEY_OFFSET = 4;
const VALUE_OFFSET = KEY_OFFSET + KEY_BYTES_MAX;
const SLOTS_DEFAULT = 1024;
const State = { Empty: 0, Used: 1, Deleted: 2 } as const;

/** A hash table of fixed-size records in a mapped region; every update is one pmsync. */
export class KvMap {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  readonly slots: number;

  /** Opens the map in region `name` of pool, creating (and formatting) it if missing. */
  static open(pool: Pool, name = 'kv', slots = SLOTS_DEFAULT): KvMap {
    if (!pool.list().some((r) => r.name === name)) pool.create(name, { size: HEADER_BYTES + slots * SLOT_BYTES });
    return new KvMap(pool.open(name).map());
  }

  constructor(private readonly mapping: MappingApi) {
    this.bytes = new Uint8Array(mapping.buffer);
    this.view = new DataView(mapping.buffer);
    if (this.view.getUint32(0, true) === 0) this.format();
    if (this.view.getUint32(0, true) !== MAGIC) throw new RegionError('CORRUPT', 'the region does not hold a map (bad magic)');
    this.slots = this.view.getUint32(8, true);
  }

  get size(): number {
    return this.view.getUint32(12, true);
  }

  get(key: string): string | undefined {
    const found = this.find(encodeKey(key));
    return found.slot === undefined ? undefined : this.valueAt(found.slot);
  }

  /** Inserts or replaces; durable when it returns. Throws NO_SPACE when every slot is taken. */
  put(key: string, value: string): void {
    const keyBytes = encodeKey(key);
    const valueBytes = new TextEncoder().encode(value);
    if (valueBytes.length > VALUE_BYTES_MAX) throw new RegionError('INVALID', `value of ${valueBytes.length} bytes (at most ${VALUE_BYTES_MAX})`);
    const found = this.find(keyBytes);
    const slot = found.slot ?? found.free;
    if (slot === undefined) throw new RegionError('NO_SPACE', `all ${this.slots} slots are taken`);
    const at = this.slotOffset(slot);
    this.bytes.fill(0, at, at + SLOT_BYTES);
    this.bytes.set(keyBytes, at + KEY_OFFSET);
    this.bytes.set(valueBytes, at + VALUE_OFFSET);
    this.view.setUint8(at + 1, keyBytes.length);
    this.view.setUint16(at + 2, valueBytes.length, true);
    this.view.setUint8(at, State.Used);
    if (found.slot === undefined) this.view.setUint32(12, this.size + 1, true);
    this.mapping.pmsync(); // the record and the count commit together, or not at all
  }

  /** Removes key (a tombstone keeps later probes going); durable when it returns. */
  delete(key: string): boolean {
    const found = this.find(encodeKey(key));
    if (found.slot === undefined) return false;
    this.view.setUint8(this.slotOffset(found.slot), State.Deleted);
    this.view.setUint32(12, this.size - 1, true);
    this.mapping.pmsync();
    return true;
  }

  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let slot = 0; slot < this.slots; slot++) {
      if (this.bytes[this.slotOffset(slot)] === State.Used) out.push([this.keyAt(slot), this.valueAt(slot)]);
    }
    return out;
  }

  private format(): void {
    const slots = Math.floor((this.mapping.length - HEADER_BYTES) / SLOT_BYTES);
    this.view.setUint32(4, 1, true);
    this.view.setUint32(8, slots, true);
    this.view.setUint32(12, 0, true);
    this.view.setUint32(0, MAGIC, true);
    this.mapping.pmsync();
  }

  // Linear probing from the key's hash: the key's slot if present, and the first free slot
  // (deleted or empty) on the way for an insert. At most `slots` probes.
  private find(key: Uint8Array): { slot?: number; free?: number } {
    let free: number | undefined;
    for (let i = 0, slot = fnv1a(key) % this.slots; i < this.slots; i++, slot = (slot + 1) % this.slots) {
      const at = this.slotOffset(slot);
      const state = this.bytes[at];
      if (state === State.Empty) return { free: free ?? slot };
      if (state === State.Deleted) free ??= slot;
      else if (this.bytes[at + 1] === key.length && equal(this.bytes.subarray(at + KEY_OFFSET, at + KEY_OFFSET + key.length), key)) return { slot };
    }
    return free === undefined ? {} : { free };
  }

  private slotOffset(slot: number): number {
    return HEADER_BYTES + slot * SLOT_BYTES;
  }

  private keyAt(slot: number): string {
    const at = this.slotOffset(slot);
    return new TextDecoder().decode(this.bytes.subarray(at + KEY_OFFSET, at + KEY_OFFSET + (this.bytes[at + 1] ?? 0)));
  }

  private valueAt(slot: number): string {
    const at = this.slotOffset(slot);
    return new TextDecoder().decode(this.bytes.subarray(at + VALUE_OFFSET, at + VALUE_OFFSET + this.view.getUint16(at + 2, true)));
  }
}

function encodeKey(key: string): Uint8Array {
  const bytes = new TextEncoder().encode(key);
  if (bytes.length === 0 || bytes.length > KEY_BYTES_MAX) throw new RegionError('INVALID', `key of ${bytes.length} bytes (1 to ${KEY_BYTES_MAX})`);
  return bytes;
}

function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** One stdin line of `batch`: `put KEY VALUE` (VALUE is the rest of the line) or `delete KEY`. */
function apply(map: KvMap, line: string): void {
  const [op, key = '', ...rest] = line.split(' ');
  if (op === 'put') map.put(key, rest.join(' '));
  else if (op === 'delete') map.delete(key);
  else throw new RegionError('INVALID', `"${line}" is not "put KEY VALUE" or "delete KEY"`);
}

async function main(args: string[]): Promise<number> {
  const [poolPath, command, key, ...value] = args;
  if (poolPath === undefined || command === undefined) {
    console.error('usage: kv-map.js POOL put KEY VALUE | get KEY | delete KEY | list | batch');
    return 2;
  }
  fs.mkdirSync(path.dirname(poolPath), { recursive: true });
  // Exclusive: one process owns the map, so its death is a crash of the pool, which pmsync
  // makes safe. (Writers in several processes would also need a RegionLock and an undo log
  // for a writer that dies mid-put, as the ledger of `regions demo` has.)
  const pool = fs.existsSync(poolPath) ? openPool(poolPath, { mode: 'exclusive' }) : createPool(poolPath, { size: '4MiB', mode: 'exclusive' });
  try {
    const map = KvMap.open(pool);
    switch (command) {
      case 'put': map.put(key ?? '', value.join(' ')); return 0;
      case 'get': { const found = map.get(key ?? ''); if (found !== undefined) console.log(found); return found === undefined ? 1 : 0; }
      case 'delete': return map.delete(key ?? '') ? 0 : 1;
      case 'list': console.log(JSON.stringify(Object.fromEntries(map.entries()))); return 0;
      case 'batch': {
        let n = 0;
        for await (const line of readline.createInterface({ input: process.stdin })) {
          if (line.length > 0) apply(map, line);
          process.stdout.write(`ok ${++n}\n`); // only after the pmsync
        }
        return 0;
      }
      default: console.error(`kv-map: unknown command ${command}`); return 2;
    }
  } finally {
    pool.close();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`kv-map: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
