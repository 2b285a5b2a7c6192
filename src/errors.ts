// The closed set of expected failures. Every error a user can provoke (bad input, full pool,
// corrupt media, dead peers) is a RegionError with one of these codes and a message that
// names what was wrong and what to do.

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

export type ErrorCode = (typeof ERROR_CODES)[number];

export class RegionError extends Error {
  override name = 'RegionError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isRegionError(error: unknown, code?: ErrorCode): error is RegionError {
  return error instanceof RegionError && (code === undefined || error.code === code);
}
