// A synchronous pause, for the few places that must wait without an event loop (the
// synchronous client's connect retries, a starting regiond waiting for a lock).

const cell = new Int32Array(new SharedArrayBuffer(4));

export function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(cell, 0, 0, ms);
}
