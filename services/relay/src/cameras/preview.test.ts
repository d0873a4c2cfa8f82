import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHeader, PpmSplitter, PreviewPairer, type Preview } from './preview.js';

function ppm(width: number, height: number, fill: number): Buffer {
  return Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`, 'latin1'), Buffer.alloc(width * height * 3, fill)]);
}

test('PPM images are cut from a stream in chunks of any size, headers split included', () => {
  const stream = Buffer.concat([ppm(4, 2, 1), ppm(4, 2, 2), ppm(2, 2, 3)]);
  for (const size of [1, 5, 13, 24, stream.length]) {
    const splitter = new PpmSplitter();
    const images: Preview[] = [];
    for (let at = 0; at < stream.length; at += size) {
      const { images: got, error } = splitter.push(stream.subarray(at, at + size));
      assert.equal(error, undefined);
      images.push(...got);
    }
    assert.deepEqual(images.map((i) => [i.width, i.height, i.rgb.length, i.rgb[0]]), [[4, 2, 24, 1], [4, 2, 24, 2], [2, 2, 12, 3]], `chunks of ${size}`);
  }
});

test('a stream that is not PPM is an error, not an allocation', () => {
  const cases: Array<[string, Buffer]> = [
    ['not P6', Buffer.from('P5\n4 2\n255\n')],
    ['maxval', Buffer.from('P6\n4 2\n65535\n')],
    ['too large', Buffer.from('P6\n100000 2\n255\n')],
    ['zero', Buffer.from('P6\n0 2\n255\n')],
    ['garbage', Buffer.from('P6\nfour 2\n255\n')],
    ['endless header', Buffer.from(`P6\n${' '.repeat(100)}`)],
    ['endless number', Buffer.from(`P6\n${'9'.repeat(20)}`)],
  ];
  for (const [name, data] of cases) assert.ok(new PpmSplitter().push(data).error, name);
  assert.equal(parseHeader(Buffer.from('P6\n4 2')), 'more');
  assert.deepEqual(parseHeader(Buffer.from('P6 4 2 255\n')), { width: 4, height: 2, length: 11 });
});

const jpeg = (n: number) => ({ n, width: 1920, height: 1080 });
const preview = (fill: number, width = 640, height = 360): Preview => ({ width, height, rgb: Buffer.alloc(3, fill) });
const seen = (ready: Array<{ jpeg: { n: number }; preview?: Preview }>) => ready.map((r) => [r.jpeg.n, r.preview?.rgb[0] ?? null]);

test('JPEGs and previews pair by order, whichever pipe comes first', () => {
  const p = new PreviewPairer<ReturnType<typeof jpeg>>();
  assert.deepEqual(seen(p.pushJpeg(jpeg(0))), []);
  assert.ok(p.pending);
  assert.deepEqual(seen(p.pushPreview(preview(0))), [[0, 0]]);
  assert.deepEqual(seen(p.pushPreview(preview(1))), []);
  assert.deepEqual(seen(p.pushJpeg(jpeg(1))), [[1, 1]]);
  assert.equal(p.pending, false);
  assert.deepEqual([p.paired, p.alone], [2, 0]);
});

test('a late preview lets its JPEG go alone and is then dropped, so the next pair stays right', () => {
  const p = new PreviewPairer<ReturnType<typeof jpeg>>();
  p.pushJpeg(jpeg(0));
  assert.deepEqual(seen(p.flush()), [[0, null]]);
  assert.deepEqual(seen(p.pushPreview(preview(0))), []);
  // The next JPEG arrives while JPEG 1 still waits: 1 goes alone, 2 waits for preview 2.
  p.pushJpeg(jpeg(1));
  assert.deepEqual(seen(p.pushJpeg(jpeg(2))), [[1, null]]);
  assert.deepEqual(seen(p.pushPreview(preview(1))), []);
  assert.deepEqual(seen(p.pushPreview(preview(2))), [[2, 2]]);
  assert.deepEqual([p.paired, p.alone], [1, 2]);
});

test('a preview of another shape is not given to the frame', () => {
  const p = new PreviewPairer<ReturnType<typeof jpeg>>();
  p.pushJpeg(jpeg(0));
  assert.deepEqual(seen(p.pushPreview(preview(7, 640, 480))), [[0, null]]);
  assert.deepEqual([p.paired, p.alone], [0, 1]);
});

test('previews far ahead of their JPEGs are bounded', () => {
  const p = new PreviewPairer<ReturnType<typeof jpeg>>();
  for (let i = 0; i < 10; i++) p.pushPreview(preview(i));
  // Only the last two are kept; JPEG 0 has none, so it waits (and goes alone at the flush).
  assert.deepEqual(seen(p.pushJpeg(jpeg(0))), []);
  assert.deepEqual(seen(p.flush()), [[0, null]]);
});
