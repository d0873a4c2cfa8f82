import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogThrottle } from './log-throttle.js';

test('a burst per window is logged, the rest counted and reported with the next logged line', () => {
  const t = new LogThrottle(3, 1000);
  const at0 = Array.from({ length: 10 }, () => t.take(0).log);
  assert.deepEqual(at0, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(t.pending, 7);
  assert.deepEqual(t.take(999), { log: false, suppressed: 0 });
  assert.deepEqual(t.take(1000), { log: true, suppressed: 8 });
  assert.equal(t.pending, 0);
  assert.deepEqual(t.take(1001), { log: true, suppressed: 0 });
});
