// The regiond protocol: frames, and the check of every request before it reaches the kernel
// (the system-call layer's argument checks, as in xv6's sysfile.c).
//
// A frame on the socket:
//
//   u32 LE  payload length N (requests at most REQUEST_BYTES_MAX, replies REPLY_BYTES_MAX)
//   payload:  u32 LE  header length H
//             H bytes the header: one JSON object (UTF-8)
//             N-4-H   data: raw region bytes (read replies, write and stageData requests)
//
// Request header: { id, op, ...arguments }; the first request of a connection is
// { op: 'hello', protocol: PROTOCOL_VERSION }. Reply header: { id, ok: true, result } or
// { id, ok: false, error: { code, message } } with a RegionError code. Replies come in order,
// one per request. A request that cannot be framed (too long) ends the connection; one that
// is framed but malformed gets a PROTOCOL or INVALID reply and the connection goes on.

import type { Access, Tracking } from '../api.js';
import { DATA_CHUNK_BYTES, MAX_SLOTS, REQUEST_HEADER_BYTES_MAX, STAGING_BYTES_MAX } from '../constants.js';
import { RegionError } from '../errors.js';
import { GID_MAX } from '../format/superblock.js';
import { checkMode, checkName } from '../kernel/names.js';

const LENGTH_BYTES = 4;
const HANDLE_MAX = 2 ** 31 - 1;
const GENERATION_MAX = 2 ** 32 - 1;

/** A region as the wire names it: a slot and its generation (a reused slot has a new one). */
export interface WireRef {
  index: number;
  generation: number;
}

export type Request = { id: number } & (
  | { op: 'hello'; protocol: number }
  | { op: 'create'; name: string; size: number; mode: number }
  | { op: 'open'; name: string; access: Access }
  | { op: 'stat'; name: string }
  | { op: 'regionInfo'; region: WireRef }
  | { op: 'list'; after?: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'resize'; name: string; size: number }
  | { op: 'remove'; name: string }
  | { op: 'chmod'; name: string; mode: number }
  | { op: 'grow'; size: number }
  | { op: 'info' }
  | { op: 'check'; repair: boolean }
  | { op: 'read'; region: WireRef; offset: number; length: number }
  | { op: 'write'; region: WireRef; offset: number; data: Uint8Array }
  | { op: 'stage'; region: WireRef; offset: number; length: number }
  | { op: 'stageData'; staging: number; at: number; data: Uint8Array }
  | { op: 'stageCommit'; staging: number }
  | { op: 'stageAbort'; staging: number }
  | { op: 'map'; region: WireRef; access: Access; offset: number; length: number; tracking: Tracking }
  | { op: 'unmap'; mapping: number }
  | { op: 'pmsync'; region: WireRef; reported?: boolean }
  | { op: 'discard'; region: WireRef; reported?: boolean }
  | { op: 'close' }
  | { op: 'retire' }
  | { op: 'setAccess'; socketMode?: number; group?: number | null }
);

export type Op = Request['op'];

// ---- argument kinds ---------------------------------------------------------------------

type Kind = 'name' | 'size' | 'offset' | 'chunk' | 'staged' | 'access' | 'tracking' | 'mode' | 'ref' | 'handle' | 'bool' | 'version' | 'gid';

function check(kind: Kind, value: unknown, field: string): unknown {
  switch (kind) {
    case 'name':
      return checkName(value, field);
    case 'size':
    case 'offset':
      return integer(value, field, 0, Number.MAX_SAFE_INTEGER);
    case 'chunk':
      return integer(value, field, 0, DATA_CHUNK_BYTES);
    case 'staged':
      return integer(value, field, 0, STAGING_BYTES_MAX);
    case 'handle':
    case 'version':
      return integer(value, field, 0, HANDLE_MAX);
    case 'mode':
      return checkMode(value);
    case 'access':
      return oneOf(value, field, ['rw', 'ro']);
    case 'tracking':
      return oneOf(value, field, ['fault', 'scan', 'manual']);
    case 'bool':
      if (typeof value !== 'boolean') throw new RegionError('INVALID', `${field} must be true or false`);
      return value;
    case 'ref':
      return ref(value, field);
    case 'gid':
      return value === null ? null : integer(value, field, 0, GID_MAX);
  }
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RegionError('INVALID', `${field} must be a whole number in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

function oneOf(value: unknown, field: string, choices: string[]): string {
  if (typeof value !== 'string' || !choices.includes(value)) throw new RegionError('INVALID', `${field} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  return value;
}

function ref(value: unknown, field: string): WireRef {
  if (!isPlainObject(value)) throw new RegionError('INVALID', `${field} must be a region reference { index, generation }`);
  const keys = Object.keys(value);
  if (keys.length !== 2 || !('index' in value) || !('generation' in value)) throw new RegionError('INVALID', `${field} must have exactly the fields index and generation`);
  return { index: integer(value['index'], `${field}.index`, 0, MAX_SLOTS - 1), generation: integer(value['generation'], `${field}.generation`, 1, GENERATION_MAX) };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- the table of requests -----------------------------------------------------------------

interface Shape {
  /** field -> kind; a trailing '?' in the kind marks an optional field. */
  fields: Record<string, Kind | `${Kind}?`>;
  /** The request carries region bytes after the header. */
  data: boolean;
}

const SHAPES: Record<Op, Shape> = {
  hello: { fields: { protocol: 'version' }, data: false },
  create: { fields: { name: 'name', size: 'size', mode: 'mode' }, data: false },
  open: { fields: { name: 'name', access: 'access' }, data: false },
  stat: { fields: { name: 'name' }, data: false },
  regionInfo: { fields: { region: 'ref' }, data: false },
  list: { fields: { after: 'name?' }, data: false },
  rename: { fields: { from: 'name', to: 'name' }, data: false },
  resize: { fields: { name: 'name', size: 'size' }, data: false },
  remove: { fields: { name: 'name' }, data: false },
  chmod: { fields: { name: 'name', mode: 'mode' }, data: false },
  grow: { fields: { size: 'size' }, data: false },
  info: { fields: {}, data: false },
  check: { fields: { repair: 'bool' }, data: false },
  read: { fields: { region: 'ref', offset: 'offset', length: 'chunk' }, data: false },
  write: { fields: { region: 'ref', offset: 'offset' }, data: true },
  stage: { fields: { region: 'ref', offset: 'offset', length: 'staged' }, data: false },
  stageData: { fields: { staging: 'handle', at: 'staged' }, data: true },
  stageCommit: { fields: { staging: 'handle' }, data: false },
  stageAbort: { fields: { staging: 'handle' }, data: false },
  map: { fields: { region: 'ref', access: 'access', offset: 'offset', length: 'size', tracking: 'tracking' }, data: false },
  unmap: { fields: { mapping: 'handle' }, data: false },
  pmsync: { fields: { region: 'ref', reported: 'bool?' }, data: false },
  discard: { fields: { region: 'ref', reported: 'bool?' }, data: false },
  close: { fields: {}, data: false },
  retire: { fields: {}, data: false },
  setAccess: { fields: { socketMode: 'mode?', group: 'gid?' }, data: false },
};

export const OPS = Object.keys(SHAPES) as Op[];

/** Each op's fields as a list, parsed from its shape once (parseRequest runs for every request). */
interface FieldSpec {
  field: string;
  kind: Kind;
  optional: boolean;
}
const FIELD_SPECS = new Map<string, FieldSpec[]>(OPS.map((op) => [op, fieldSpecs(SHAPES[op])]));

function fieldSpecs(shape: Shape): FieldSpec[] {
  return Object.entries(shape.fields).map(([field, spec]) => {
    const optional = spec.endsWith('?');
    return { field, kind: spec.replace('?', '') as Kind, optional };
  });
}

/** The request id of a header, if it has a valid one (so even a rejected request's reply names it). */
export function requestId(header: unknown): number | null {
  if (!isPlainObject(header)) return null;
  const id = header['id'];
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : null;
}

/** Checks a decoded request against its op's shape; PROTOCOL for the frame's structure, INVALID for values. */
export function parseRequest(header: unknown, data: Uint8Array): Request {
  if (!isPlainObject(header)) throw new RegionError('PROTOCOL', 'a request header must be a JSON object');
  const id = requestId(header);
  if (id === null) throw new RegionError('PROTOCOL', 'a request needs an id: a non-negative whole number');
  const op = header['op'];
  if (typeof op !== 'string' || !Object.hasOwn(SHAPES, op)) throw new RegionError('PROTOCOL', `unknown op ${describe(op)}`);
  const shape = SHAPES[op as Op];
  for (const key of Object.keys(header)) {
    if (key !== 'id' && key !== 'op' && !Object.hasOwn(shape.fields, key)) throw new RegionError('PROTOCOL', `${op}: unknown field ${describe(key)}`);
  }
  if (!shape.data && data.length > 0) throw new RegionError('PROTOCOL', `${op} carries no data, got ${data.length} bytes`);
  const request: Record<string, unknown> = { id, op };
  for (const { field, kind, optional } of FIELD_SPECS.get(op) ?? []) {
    const value = header[field];
    if (value === undefined) {
      if (optional) continue;
      throw new RegionError('PROTOCOL', `${op}: missing field ${field}`);
    }
    request[field] = check(kind, value, `${op}.${field}`);
  }
  if (shape.data) {
    if (data.length > DATA_CHUNK_BYTES) throw new RegionError('INVALID', `${op}: ${data.length} bytes of data exceed the limit of ${DATA_CHUNK_BYTES}`);
    request['data'] = data;
  }
  return request as Request;
}

// ---- frames --------------------------------------------------------------------------------

const NO_DATA = new Uint8Array(0);
/** Fatal: a header that is not UTF-8 is refused, not repaired. One for every frame (decode keeps no state between calls). */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** One frame: length, header length, header JSON, data. */
export function encodeFrame(header: unknown, data: Uint8Array = NO_DATA): Buffer {
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(2 * LENGTH_BYTES + jsonBytes + data.length);
  frame.writeUInt32LE(LENGTH_BYTES + jsonBytes + data.length, 0);
  frame.writeUInt32LE(jsonBytes, LENGTH_BYTES);
  frame.write(json, 2 * LENGTH_BYTES, 'utf8');
  if (data.length > 0) frame.set(data, 2 * LENGTH_BYTES + jsonBytes);
  return frame;
}

/** Splits a payload into its JSON header and its data; PROTOCOL if it is not well formed. */
export function decodePayload(payload: Uint8Array, headerBytesMax = REQUEST_HEADER_BYTES_MAX): { header: unknown; data: Uint8Array } {
  if (payload.length < LENGTH_BYTES) throw new RegionError('PROTOCOL', `a frame of ${payload.length} bytes is too short for its header length`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const headerBytes = view.getUint32(0, true);
  if (headerBytes > payload.length - LENGTH_BYTES) throw new RegionError('PROTOCOL', `the header length ${headerBytes} exceeds the frame of ${payload.length} bytes`);
  if (headerBytes > headerBytesMax) throw new RegionError('PROTOCOL', `a header of ${headerBytes} bytes exceeds the limit of ${headerBytesMax}`);
  let header: unknown;
  try {
    header = JSON.parse(UTF8.decode(payload.subarray(LENGTH_BYTES, LENGTH_BYTES + headerBytes)));
  } catch (error) {
    throw new RegionError('PROTOCOL', `the header is not UTF-8 JSON: ${(error as Error).message}`);
  }
  return { header, data: payload.subarray(LENGTH_BYTES + headerBytes) };
}

/**
 * Cuts a byte stream into frame payloads. A length over maxBytes is PROTOCOL: the stream can
 * not be resynchronised, so the caller ends the connection.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes of an incomplete frame are waiting. */
  get partial(): boolean {
    return this.buffered > 0;
  }

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const payloads: Buffer[] = [];
    while (this.buffered >= LENGTH_BYTES) {
      const head = this.gather(LENGTH_BYTES);
      const length = head.readUInt32LE(0);
      if (length > this.maxBytes) throw new RegionError('PROTOCOL', `a frame of ${length} bytes exceeds the limit of ${this.maxBytes}`);
      if (this.buffered < LENGTH_BYTES + length) break;
      const frame = this.gather(LENGTH_BYTES + length);
      // A copy of this frame alone: the chunk may hold the next frames too, and share memory with them.
      payloads.push(Buffer.from(frame.subarray(LENGTH_BYTES, LENGTH_BYTES + length)));
      this.consume(LENGTH_BYTES + length);
    }
    return payloads;
  }

  /** The first `bytes` bytes as one buffer (merging chunks as needed). */
  private gather(bytes: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= bytes) return first;
    const merged = Buffer.concat(this.chunks);
    this.chunks = [merged];
    return merged;
  }

  private consume(bytes: number): void {
    const merged = this.gather(bytes);
    const rest = merged.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= bytes;
  }
}
