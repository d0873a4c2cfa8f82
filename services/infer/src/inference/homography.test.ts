import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHomography, expandQuad, isUsableQuad, quadSize, solveHomography, warpQuad, type Point } from './homography.js';

const close = (a: readonly number[], b: readonly number[], eps = 1e-6) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < eps, `${a} vs ${b}`));

test('a known quadrilateral maps onto the rectangle, corner by corner and in between', () => {
  const quad: Point[] = [
    [30, 20],
    [150, 35],
    [140, 90],
    [25, 70],
  ];
  const rect: Point[] = [
    [0, 0],
    [100, 0],
    [100, 40],
    [0, 40],
  ];
  const h = solveHomography(quad, rect)!;
  quad.forEach((p, i) => close(applyHomography(h, p), rect[i]!));
  // Straight lines stay straight: the quad's diagonal crossing maps to the rectangle's centre.
  const [a, c, b, d] = [quad[0]!, quad[2]!, quad[1]!, quad[3]!];
  const den = (a[0] - c[0]) * (b[1] - d[1]) - (a[1] - c[1]) * (b[0] - d[0]);
  const t = ((a[0] - b[0]) * (b[1] - d[1]) - (a[1] - b[1]) * (b[0] - d[0])) / den;
  const cross: Point = [a[0] + t * (c[0] - a[0]), a[1] + t * (c[1] - a[1])];
  close(applyHomography(h, cross), [50, 20]);
});

test('degenerate corners give no homography and are not usable quads', () => {
  const line: Point[] = [
    [0, 0],
    [1, 1],
    [2, 2],
    [3, 3],
  ];
  assert.equal(solveHomography(line, line), null);
  assert.equal(isUsableQuad(line), false);
  assert.equal(isUsableQuad([[0, 0], [10, 0], [0, 10], [10, 10]]), false, 'crossed (bow-tie) corners');
  assert.equal(isUsableQuad([[0, 0], [10, 0], [10, 5], [0, 5]]), true);
  assert.equal(isUsableQuad([[0, 0], [NaN, 0], [10, 5], [0, 5]]), false);
});

test('warping a slanted bright quad fills the rectangle with it, the dark outside stays out', () => {
  const w = 80;
  const hgt = 60;
  const src = new Uint8Array(w * hgt);
  const quad: Point[] = [
    [20, 10],
    [70, 18],
    [66, 50],
    [14, 42],
  ];
  const inv = solveHomography(quad, [[0, 0], [1, 0], [1, 1], [0, 1]])!;
  for (let y = 0; y < hgt; y++)
    for (let x = 0; x < w; x++) {
      const [u, v] = applyHomography(inv, [x + 0.5, y + 0.5]);
      // Bright inside, with a dark vertical bar in the middle third (a "character").
      if (u >= 0 && u <= 1 && v >= 0 && v <= 1) src[y * w + x] = u > 0.4 && u < 0.6 ? 0 : 255;
    }
  const out = warpQuad(src, w, hgt, 1, quad, 50, 30)!;
  const at = (x: number, y: number) => out[y * 50 + x]!;
  assert.ok(at(5, 15) > 200 && at(45, 15) > 200, 'sides of the rectangle are the bright quad');
  assert.ok(at(25, 15) < 50, 'the bar lands in the middle');
  assert.ok(at(25, 3) < 50 && at(25, 27) < 50, 'and runs top to bottom');
});

test('expandQuad widens each side by the margin; quadSize takes the longer opposite sides', () => {
  const q: Point[] = [
    [10, 10],
    [110, 10],
    [110, 30],
    [10, 30],
  ];
  const e = expandQuad(q, 0.05);
  close(e[0]!, [5, 9]);
  close(e[2]!, [115, 31]);
  assert.deepEqual(quadSize([[0, 0], [100, 0], [120, 40], [0, 30]]), { width: 120, height: 45 });
});
