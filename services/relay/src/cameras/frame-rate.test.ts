import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameRate } from './frame-rate.js';

test('steady frames: the rate between them, whenever it is asked', () => {
  const r = new FrameRate();
  for (let t = 0; t <= 5000; t += 500) r.add(t);
  assert.equal(r.perSecond(5000), 2);
  assert.equal(r.perSecond(5400), 2, 'less than one interval since the last frame');
  const slow = new FrameRate();
  for (let t = 0; t <= 50_000; t += 10_000) slow.add(t);
  assert.equal(slow.perSecond(55_000), 0.1);
});

test('fewer than two frames: 0', () => {
  const r = new FrameRate();
  assert.equal(r.perSecond(0), 0);
  r.add(100);
  assert.equal(r.perSecond(200), 0);
});

test('a stalled camera decays, and reads 0 once its frames are out of the window', () => {
  const r = new FrameRate(20, 10_000);
  for (let t = 0; t <= 2000; t += 500) r.add(t);
  const later = r.perSecond(4500);
  assert.ok(later > 0 && later < 2, String(later));
  assert.equal(r.perSecond(20_000), 0);
});

test('keeps only the last frames: a rate change shows within `keep` frames', () => {
  const r = new FrameRate(5);
  for (let t = 0; t < 10_000; t += 1000) r.add(t);
  for (let t = 10_000; t <= 12_000; t += 250) r.add(t);
  assert.equal(r.perSecond(12_000), 4);
  r.reset();
  assert.equal(r.perSecond(12_000), 0);
});
