// The format's CRC32C (JavaScript, so the codecs load no native code): the standard check
// values, unsigned results, and chaining through the seed as the slot codec uses it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '../src/format/crc32c.js';

test('crc32c: check values, unsigned results, chaining', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 zero bytes
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // RFC 3720 B.4: 32 0xff bytes
  const data = new Uint8Array(1000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  const whole = crc32c(data);
  assert.ok(whole >= 0 && whole <= 0xffffffff);
  for (const split of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    assert.equal(crc32c(data.subarray(split), crc32c(data.subarray(0, split))), whole, `split at ${split}`);
  }
});
