// Invariant checks that stay on in production. A failed assertion means a bug or corrupted
// state in *our* code: it stops with a message naming the invariant instead of writing on.
// Expected failures (bad input, full pool, ...) are RegionErrors, never assertions.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

/**
 * `detail` (a number, a name) is added to the message only on failure: a template string
 * built for every check costs more than the check on a hot path (per page of a pmsync).
 */
export function assert(condition: unknown, invariant: string, detail?: number | string): asserts condition {
  if (condition) return;
  throw new AssertionError(`invariant violated: ${invariant}${detail === undefined ? '' : ` (${detail})`}`);
}

export function assertInteger(value: number, invariant: string): void {
  if (!Number.isSafeInteger(value)) throw new AssertionError(`invariant violated: ${invariant} (got ${value})`);
}

export function unreachable(value: never, what: string): never {
  throw new AssertionError(`invariant violated: unreachable ${what}: ${String(value)}`);
}
