// Fail-stop: a flush, fence or msync that fails inside a commit leaves the kernel's DRAM state
// undefined, so the kernel stops. That call is RegionError IO naming the device error, every
// later call is IO naming the first error, `failure` holds it, and the pool on PM recovers
// at the next mount to the state before or after the interrupted update.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIXED_NOW, logicalState } from '../src/crashtest/harness.js';
import { pattern } from '../src/crashtest/scenarios.js';
import { isRegionError, RegionError } from '../src/errors.js';
import { type RegionRef, RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { WrappedDevice } from './fixtures/wrapped-device.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };
const POOL_BYTES = 256 * 1024;

/** A SimDevice whose Nth flush or fence (counted from arm()) throws as a failed msync would. */
class FailingDevice extends WrappedDevice {
  private calls = 0;
  private failAt = 0;

  /** Counts flushes and fences from now; the nth throws (0: none does). */
  arm(nth: number): void {
    this.calls = 0;
    this.failAt = nth;
  }
  get callsSinceArm(): number {
    return this.calls;
  }
  override flush(offset: number, length: number): void {
    this.tick('flush');
    this.inner.flush(offset, length);
  }
  override fence(): void {
    this.tick('fence');
    this.inner.fence();
  }
  private tick(what: string): void {
    this.calls++;
    if (this.calls !== this.failAt) return;
    const error = new Error(`msync during ${what} ${this.calls}: Input/output error`);
    throw Object.assign(error, { code: 'EIO', syscall: 'msync' });
  }
}

function setup(): { device: FailingDevice; kernel: RegionManager } {
  const device = new FailingDevice(new SimDevice({ sizeBytes: POOL_BYTES }));
  RegionManager.format(device, FIXED_NOW);
  const kernel = RegionManager.mount(device, 'pool');
  const ref = kernel.lookup(kernel.create('r', 64 * 1024, OWNER, FIXED_NOW).name);
  kernel.commitPages(ref, [0, 1, 9].map((page) => ({ page, bytes: pattern(1, page) })), FIXED_NOW);
  kernel.create('s', 8192, OWNER, FIXED_NOW);
  return { device, kernel };
}

const r = (k: RegionManager): RegionRef => k.lookup('r');
/** Read through a function, so that an assertion about it does not narrow later reads. */
const failureOf = (k: RegionManager): RegionError | null => k.failure;
const OPERATIONS: [string, (k: RegionManager) => unknown][] = [
  ['pmsync', (k) => k.commitPages(r(k), [2, 9].map((page) => ({ page, bytes: pattern(2, page) })), FIXED_NOW)],
  ['create', (k) => k.create('new', 4096, OWNER, FIXED_NOW)],
  ['remove', (k) => k.remove(k.lookup('s'))],
  ['rename', (k) => k.rename(r(k), 'renamed', FIXED_NOW)],
  ['set owner', (k) => k.setOwner(r(k), { mode: 0o640, uid: 2, gid: 2 }, FIXED_NOW)],
  ['resize shrink', (k) => k.resize(r(k), 5000, FIXED_NOW)],
  ['pool grow (the journal moves)', (k) => k.grow(8 * POOL_BYTES)],
  ['pool access', (k) => k.setAccess({ socketMode: 0o660, group: 7 })],
];

/** Every public entry point of RegionManager, called as an application would. */
const ENTRY_POINTS: [string, (k: RegionManager, ref: RegionRef) => unknown][] = [
  ['capacityBytes', (k) => k.capacityBytes],
  ['lookup', (k) => k.lookup('r')],
  ['slot', (k, ref) => k.slot(ref)],
  ['info', (k, ref) => k.info(ref)],
  ['list', (k) => k.list()],
  ['listPage', (k) => k.listPage(undefined, 10)],
  ['create', (k) => k.create('another', 4096, OWNER)],
  ['remove', (k, ref) => k.remove(ref)],
  ['rename', (k, ref) => k.rename(ref, 'x')],
  ['setOwner', (k, ref) => k.setOwner(ref, OWNER)],
  ['resize', (k, ref) => k.resize(ref, 8192)],
  ['slotPosition', (k, ref) => k.slotPosition(ref)],
  ['pageTableBlocks', (k, ref) => k.pageTableBlocks(ref)],
  ['readPage', (k, ref) => k.readPage(ref, 0, new Uint8Array(4096))],
  ['forEachCommittedPage', (k, ref) => k.forEachCommittedPage(ref, () => {})],
  ['committedPage', (k, ref) => k.committedPage(ref, 0)],
  ['commitPages', (k, ref) => k.commitPages(ref, [])],
  ['poolCounts', (k) => k.poolCounts()],
  ['grow', (k) => k.grow(16 * POOL_BYTES)],
  ['access', (k) => k.access],
  ['setAccess', (k) => k.setAccess({ socketMode: 0o666, group: null })],
  ['check', (k) => k.check()],
];
// Private; their callers call usable().
const INTERNAL = new Set(['constructor', 'switchSuperblock', 'visible', 'pageBlock']);

test('the entry-point list covers every method of RegionManager', () => {
  // RegionManager's own methods and those of PoolUpdates, the class it extends (grow, access).
  const pool = Object.getPrototypeOf(RegionManager.prototype) as object;
  const own = [...Object.getOwnPropertyNames(RegionManager.prototype), ...Object.getOwnPropertyNames(pool)];
  const names = [...new Set(own)].filter((n) => !INTERNAL.has(n));
  assert.deepEqual(names.sort(), ENTRY_POINTS.map(([n]) => n).sort());
});

for (const [name, operation] of OPERATIONS) {
  test(`a device error at any flush or fence of ${name} stops the kernel; the pool recovers`, () => {
    const probe = setup();
    const before = logicalState(probe.kernel);
    probe.device.arm(0);
    operation(probe.kernel);
    const after = logicalState(probe.kernel);
    const points = probe.device.callsSinceArm;
    assert.ok(points > 0);
    for (let nth = 1; nth <= points; nth++) {
      const { device, kernel } = setup();
      const ref = kernel.lookup('r');
      assert.ok(!failureOf(kernel));
      device.arm(nth);
      const what = `${name}, call ${nth}`;
      assert.throws(() => operation(kernel), (e) => isRegionError(e, 'IO') && /EIO/.test(e.message), what);
      const first = failureOf(kernel);
      assert.ok(first instanceof RegionError && /EIO/.test(first.message), `${what}: failure is kept`);
      device.arm(0);
      for (const [entry, call] of ENTRY_POINTS) {
        const refused = (e: unknown): boolean => isRegionError(e, 'IO') && e.message.includes(first.message);
        assert.throws(() => call(kernel, ref), refused, `${what}: ${entry} is refused`);
      }
      const again = RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool');
      assert.ok(again.check().ok, `${name}, call ${nth}: the pool checks`);
      assert.ok([before, after].includes(logicalState(again)), `${name}, call ${nth}: before or after, nothing else`);
    }
  });
}

test('errors outside a commit do not stop the kernel', () => {
  const { kernel } = setup();
  const ref = kernel.lookup('r');
  assert.throws(() => kernel.create('r', 4096, OWNER), (e) => isRegionError(e, 'EXISTS'));
  const all = Array.from({ length: 16 }, (_, page) => ({ page, bytes: pattern(3, page) }));
  const big = kernel.lookup(kernel.create('big', 64 * 4096, OWNER).name);
  assert.throws(() => {
    for (let i = 0; i < 8; i++) {
      kernel.commitPages(big, all.map(({ page, bytes }) => ({ page: page + 16 * (i % 4), bytes })));
    }
  }, (e) => isRegionError(e, 'NO_SPACE'));
  assert.ok(!failureOf(kernel), 'not stopped');
  kernel.commitPages(ref, [{ page: 3, bytes: pattern(4, 3) }]);
  assert.ok(kernel.check().ok);
});
