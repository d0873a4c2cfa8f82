import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MotionDetector } from './motion.js';

const scene = (fill: number, block?: { x: number; value: number }) => {
  const t = new Uint8Array(64 * 36).fill(fill);
  if (block) for (let y = 10; y < 26; y++) for (let x = block.x; x < block.x + 16; x++) t[y * 64 + x] = block.value;
  return t;
};

test('motion: noise and slow light changes are still; a car driving in is motion', () => {
  const m = new MotionDetector();
  assert.equal(m.moving(scene(100)), true, 'the first thumbnail: nothing to compare with');
  for (let i = 0; i < 30; i++) assert.equal(m.moving(scene(100 + (i % 3))), false, 'noise of a few grey levels');
  for (let i = 0; i < 30; i++) assert.equal(m.moving(scene(100 + i)), false, 'dusk: one grey level per frame');
  assert.equal(m.moving(scene(130, { x: 5, value: 230 })), true, 'a bright car enters');
  assert.equal(m.moving(scene(130, { x: 9, value: 230 })), true, 'and moves');
});

test('motion: a young background averages its first thumbnails instead of trusting the first one', () => {
  const m = new MotionDetector();
  assert.equal(m.moving(scene(85)), true, 'the first thumbnail');
  assert.equal(m.moving(scene(115)), true, '30 grey levels from the only picture so far');
  // The background is now their mean (100): noise of ±15 around it is still at once, where a
  // background of the first picture followed by 5 % steps would call every other frame motion.
  for (let i = 0; i < 10; i++) assert.equal(m.moving(scene(i % 2 ? 85 : 115)), false, `noise frame ${i}`);
});
