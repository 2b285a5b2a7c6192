// What a user does with the package root alone: check their own PM code on a SimDevice.
// A known-bad writer (flag persisted in the same fence as its data) must be caught.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimDevice } from 'region-system';

function badWriter(device: SimDevice): void {
  device.write(0, new Uint8Array(256).fill(0xab)); // data
  device.flush(0, 256);
  device.write(4096, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])); // flag
  device.flush(4096, 8);
  device.fence(); // one fence for both: the flag may be durable while data is not
}

function violation(image: Uint8Array): boolean {
  return image[4096] === 1 && image.subarray(0, 256).some((b) => b !== 0xab);
}

test('the package root exports enough to catch a known-bad writer', (t) => {
  const device = new SimDevice({ sizeBytes: 8192 });
  let found = 0;
  let images = 0;
  device.onFence((d) => {
    for (const image of d.crashImages({ seed: 1 })) {
      images++;
      if (violation(image)) found++;
    }
  });
  badWriter(device);
  t.diagnostic(`${found} of ${images} crash images show the flag without its data`);
  assert.ok(found > 0);
});
