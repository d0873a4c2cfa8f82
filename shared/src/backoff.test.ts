import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, mayRetry } from './backoff.js';

test('backoff: nothing before a failure, then doubling from the base up to the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((f) => backoffDelayMs(f, 100, 1000)), [0, 100, 200, 400, 800, 1000]);
  assert.deepEqual([1, 2, 3, 4, 11].map((f) => backoffDelayMs(f, 5000, 60_000)), [5000, 10_000, 20_000, 40_000, 60_000]);
  assert.equal(backoffDelayMs(-3, 100, 1000), 0);
  assert.equal(backoffDelayMs(Number.NaN, 100, 1000), 0);
});

test('backoff: fractional bases give whole milliseconds; endless failures stay at the cap', () => {
  assert.deepEqual([1, 2, 3].map((f) => backoffDelayMs(f, 0.05 * 1000, 30_000)), [50, 100, 200]);
  assert.equal(backoffDelayMs(1, 12.4, 1000), 12);
  assert.equal(backoffDelayMs(1_000_000, 250, 30_000), 30_000);
  assert.equal(backoffDelayMs(Number.MAX_SAFE_INTEGER, 1, Number.MAX_VALUE), 2 ** 30, 'the exponent is bounded, the delay finite');
});

test('mayRetry: max_retries -1 is forever; otherwise that many retries', () => {
  assert.equal(mayRetry(1_000_000, -1), true);
  assert.equal(mayRetry(0, 0), true);
  assert.equal(mayRetry(1, 0), false);
  assert.equal(mayRetry(3, 3), true);
  assert.equal(mayRetry(4, 3), false);
});
