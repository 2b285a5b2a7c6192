// The closed set of expected failures. Every error a user can provoke (bad input, full pool,
// corrupt media, dead peers) is a RegionError with one of these codes and a message that
// names what was wrong and what to do.

/** Every code a RegionError can carry: a closed set, so callers can switch on it. */
export const ERROR_CODES = [
  'CORRUPT', // on-PM structure fails validation; message names the structure and offset
  'EXISTS', // name already taken
  'NOT_FOUND', // unknown region, pool or file
  'NO_SPACE', // pool or region-table full
  'INVALID', // bad argument: size, name, offset, option
  'PERMISSION', // mode/uid/gid forbids the access
  'BUSY', // pool held by another process, region mapped, lock held
  'TIMEOUT', // a peer did not answer in time
  'SERVER_GONE', // regiond died or closed the connection
  'CLOSED', // object used after close/unmap
  'UNSUPPORTED', // the kernel or file system lacks a needed feature
  'IO', // an operating-system call failed (errno in the message)
  'PROTOCOL', // malformed or incompatible client/server message
] as const;

/** One of ERROR_CODES. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * An expected failure of the region system: bad input, a full pool, corrupt media, a dead
 * peer. `code` says which kind; the message names what was wrong and what to do. Anything else
 * thrown is a bug (an AssertionError names the broken invariant).
 */
export class RegionError extends Error {
  /** Always 'RegionError'. */
  override name = 'RegionError';
  /** Which kind of failure (one of ERROR_CODES). */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * True if error is a RegionError, and has `code` if one is given: `if (isRegionError(e,
 * "NOT_FOUND")) ...`.
 */
export function isRegionError(error: unknown, code?: ErrorCode): error is RegionError {
  return error instanceof RegionError && (code === undefined || error.code === code);
}
