// Invariant checks that stay on in production. A failed assertion means a bug or corrupted
// state in *our* code: it stops with a message naming the invariant instead of writing on.
// Expected failures (bad input, full pool, ...) are RegionErrors, never assertions.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, invariant: string): asserts condition {
  if (!condition) throw new AssertionError(`invariant violated: ${invariant}`);
}

export function assertInteger(value: number, invariant: string): void {
  if (!Number.isSafeInteger(value)) throw new AssertionError(`invariant violated: ${invariant} (got ${value})`);
}

export function unreachable(value: never, what: string): never {
  throw new AssertionError(`invariant violated: unreachable ${what}: ${String(value)}`);
}
