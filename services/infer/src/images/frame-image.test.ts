import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { CodedError } from '@detector-worker/shared/errors';
import { FrameImage, clampBox } from './frame-image.js';

const jpeg = (w: number, h: number, colour = '#c83232') => sharp({ create: { width: w, height: h, channels: 3, background: colour } }).jpeg().toBuffer();

test('letterbox returns the resized pixels and where they sit in the tensor; stretch and center-crop fill the target', async () => {
  const img = await FrameImage.open(await jpeg(1280, 720), 10_000_000);
  assert.equal(img.width, 1280);
  const lb = await img.fitted({ width: 640, height: 640, resize: 'letterbox', padValue: 114 });
  assert.equal(lb.width, 640);
  assert.equal(lb.height, 360);
  assert.equal(lb.pixels.length, 640 * 360 * 3);
  assert.deepEqual(lb.placement, { tensorWidth: 640, tensorHeight: 640, left: 0, top: 140, padValue: 114 });
  assert.deepEqual([lb.info.scaleX, lb.info.padY], [0.5, 140]);
  const full = await img.fitted({ width: 640, height: 640, resize: 'letterbox', padValue: 114 }, { preferFullDecode: true });
  assert.equal(full.pixels.length, lb.pixels.length);
  const st = await img.fitted({ width: 224, height: 224, resize: 'stretch', padValue: 0 });
  assert.equal(st.pixels.length, 224 * 224 * 3);
  assert.equal(st.placement, undefined);
  const cc = await img.fitted({ width: 224, height: 224, resize: 'center-crop', padValue: 0 });
  assert.equal(cc.pixels.length, 224 * 224 * 3);
  assert.ok(Math.abs(cc.pixels[0]! - 200) < 12, 'colour survives');
});

test('crop makes an image of the box; encode writes jpeg/png of a box or the whole', async () => {
  const img = await FrameImage.open(await jpeg(320, 240), 10_000_000);
  const part = await img.crop([10.4, 20, 110, 70.2]);
  assert.deepEqual([part.width, part.height], [100, 51]);
  const png = await part.encode(undefined, 'png', 90);
  assert.equal((await sharp(png).metadata()).format, 'png');
  const box = await img.encode([0, 0, 50, 40], 'jpeg', 80);
  assert.deepEqual([(await sharp(box).metadata()).width, (await sharp(box).metadata()).height], [50, 40]);
  await assert.rejects(img.crop([400, 400, 500, 500]), (e: CodedError) => e.code === 'CROP_EMPTY' || e.code === 'IMAGE_INVALID');
  assert.equal(clampBox([-5, -5, 10, 10], 8, 8)?.width, 8);
  assert.equal(clampBox([3, 3, 3, 9], 8, 8), null);
});

test('bad images get coded errors', async () => {
  await assert.rejects(FrameImage.open(Buffer.alloc(0), 100), (e: CodedError) => e.code === 'IMAGE_EMPTY' && e.statusCode === 400);
  await assert.rejects(FrameImage.open(Buffer.from('not an image at all'), 100), (e: CodedError) => e.code === 'IMAGE_INVALID' && e.statusCode === 422);
  await assert.rejects(FrameImage.open(await jpeg(200, 200), 1000), (e: CodedError) => e.code === 'IMAGE_TOO_LARGE' && e.statusCode === 413);
  const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).gif().toBuffer();
  await assert.rejects(FrameImage.open(gif, 100), (e: CodedError) => e.code === 'IMAGE_UNSUPPORTED' && e.statusCode === 415);
  const whole = await jpeg(400, 300);
  const truncated = await FrameImage.open(whole.subarray(0, Math.floor(whole.length / 2)), 10_000_000);
  await assert.rejects(truncated.fitted({ width: 64, height: 64, resize: 'stretch', padValue: 0 }), (e: CodedError) => e.code === 'IMAGE_INVALID');
});

test('greyscale and alpha images become 3-channel RGB', async () => {
  const grey = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#808080' } }).greyscale().jpeg().toBuffer();
  const g = await FrameImage.open(grey, 10_000);
  assert.equal((await g.fitted({ width: 16, height: 16, resize: 'stretch', padValue: 0 })).pixels.length, 16 * 16 * 3);
  const rgba = await sharp({ create: { width: 40, height: 30, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0.5 } } }).png().toBuffer();
  const a = await FrameImage.open(rgba, 10_000);
  assert.equal((await a.crop([0, 0, 10, 10])).width, 10);
  assert.equal((await a.fitted({ width: 16, height: 16, resize: 'letterbox', padValue: 0 })).pixels.length, 16 * 12 * 3);
});

test('a frame already at the letterbox size is decoded as it is: the same pixels as a plain decode', async () => {
  const texture = Buffer.from(Array.from({ length: 640 * 360 * 3 }, (_, i) => (i * 2654435761) >>> 24));
  const frame = await sharp(texture, { raw: { width: 640, height: 360, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  const img = await FrameImage.open(frame, 10_000_000);
  assert.deepEqual([img.width, img.height, img.format], [640, 360, 'jpeg']);
  const lb = await img.fitted({ width: 640, height: 640, resize: 'letterbox', padValue: 114 });
  assert.deepEqual(lb.placement, { tensorWidth: 640, tensorHeight: 640, left: 0, top: 140, padValue: 114 });
  assert.ok(lb.pixels.equals(await sharp(frame).raw().toBuffer()), 'pixels of a plain decode');
  const st = await img.fitted({ width: 640, height: 360, resize: 'stretch', padValue: 0 });
  assert.ok(st.pixels.equals(lb.pixels));
});

test('the header is read without sharp for plain JPEGs; CMYK, 1-channel, progressive and cut headers still open as before', async () => {
  const progressive = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#c83232' } }).jpeg({ progressive: true }).toBuffer();
  const p = await FrameImage.open(progressive, 10_000_000);
  assert.deepEqual([p.width, p.height], [300, 200]);
  assert.equal((await p.fitted({ width: 64, height: 64, resize: 'letterbox', padValue: 114 })).pixels.length, 64 * 43 * 3);
  const base = () => sharp({ create: { width: 40, height: 30, channels: 3, background: '#3264c8' } });
  for (const encoded of [await base().toColourspace('cmyk').jpeg().toBuffer(), await base().greyscale().toColourspace('b-w').jpeg().toBuffer()]) {
    const img = await FrameImage.open(encoded, 10_000);
    const fit = await img.fitted({ width: 40, height: 30, resize: 'stretch', padValue: 0 });
    assert.equal(fit.pixels.length, 40 * 30 * 3, 'three channels out');
  }
  const whole = await base().jpeg().toBuffer();
  await assert.rejects(FrameImage.open(whole.subarray(0, 40), 10_000), (e: CodedError) => e.code === 'IMAGE_INVALID');
  // A header claiming 60000x60000 is refused from the header alone.
  const huge = Buffer.from(whole);
  for (let i = 2; i < huge.length; i += 2 + huge.readUInt16BE(i + 2)) {
    if (huge[i + 1] === 0xc0) {
      huge.writeUInt16BE(60000, i + 5);
      huge.writeUInt16BE(60000, i + 7);
      break;
    }
  }
  await assert.rejects(FrameImage.open(huge, 40_000_000), (e: CodedError) => e.code === 'IMAGE_TOO_LARGE' && e.statusCode === 413);
});

/** A textured RGB frame (no flat areas, so a resampling or channel mix-up would show). */
const texture = (w: number, h: number) => Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (i * 2654435761) >>> 24));

test('a raw frame at the letterbox size goes to the tensor as it is: the same buffer, no sharp call', async () => {
  const data = texture(640, 360);
  const img = FrameImage.openRaw({ data, width: 640, height: 360 }, 10_000_000);
  assert.deepEqual([img.width, img.height, img.format], [640, 360, 'raw']);
  const lb = await img.fitted({ width: 640, height: 640, resize: 'letterbox', padValue: 114 });
  // sharp always hands back a buffer of its own: the very same object proves it was not called.
  assert.equal(lb.pixels, data);
  assert.deepEqual([lb.width, lb.height], [640, 360]);
  assert.deepEqual(lb.placement, { tensorWidth: 640, tensorHeight: 640, left: 0, top: 140, padValue: 114 });
  assert.deepEqual([lb.info.scaleX, lb.info.scaleY, lb.info.padX, lb.info.padY], [1, 1, 0, 140]);
  const st = await img.fitted({ width: 640, height: 360, resize: 'stretch', padValue: 0 });
  assert.equal(st.pixels, data);
  assert.deepEqual([st.info.scaleX, st.info.scaleY], [1, 1]);
  // The same geometry as the decoded path would give (a lossless PNG of the same pixels).
  const png = await FrameImage.open(await sharp(data, { raw: { width: 640, height: 360, channels: 3 } }).png().toBuffer(), 10_000_000);
  const viaPng = await png.fitted({ width: 640, height: 640, resize: 'letterbox', padValue: 114 });
  assert.ok(viaPng.pixels.equals(lb.pixels));
  assert.deepEqual(viaPng.info, lb.info);
  assert.deepEqual(viaPng.placement, lb.placement);
});

test('a raw frame of another size is fitted by sharp: the same pixels as its lossless PNG; crops and saves work', async () => {
  const data = texture(320, 200);
  const img = FrameImage.openRaw({ data, width: 320, height: 200 }, 10_000_000);
  const png = await FrameImage.open(await sharp(data, { raw: { width: 320, height: 200, channels: 3 } }).png().toBuffer(), 10_000_000);
  for (const target of [
    { width: 128, height: 128, resize: 'letterbox', padValue: 114 },
    { width: 96, height: 64, resize: 'stretch', padValue: 0 },
    { width: 64, height: 64, resize: 'center-crop', padValue: 0 },
  ] as const) {
    const a = await img.fitted(target);
    const b = await png.fitted(target);
    assert.notEqual(a.pixels, data);
    assert.ok(a.pixels.equals(b.pixels), target.resize);
    assert.deepEqual([a.width, a.height, a.info, a.placement], [b.width, b.height, b.info, b.placement]);
  }
  const part = await img.crop([10, 20, 110, 70]);
  assert.ok((await part.fitted({ width: 100, height: 50, resize: 'stretch', padValue: 0 })).pixels.equals(await (await png.crop([10, 20, 110, 70])).fitted({ width: 100, height: 50, resize: 'stretch', padValue: 0 }).then((f) => f.pixels)));
  const saved = await img.encode([0, 0, 50, 40], 'png', 90);
  assert.deepEqual([(await sharp(saved).metadata()).width, (await sharp(saved).metadata()).height], [50, 40]);
  const whole = await img.encode(undefined, 'png', 90);
  assert.ok((await sharp(whole).raw().toBuffer()).equals(data), 'a whole-frame save is lossless');
  assert.equal((await sharp(await img.encode(undefined, 'jpeg', 80)).metadata()).format, 'jpeg');
});

test('raw frames: an empty body, a size over the pixel limit, a wrong length and a zero size get coded errors', () => {
  const fails = (fn: () => unknown, code: string, status: number) => assert.throws(fn, (e: CodedError) => e.code === code && e.statusCode === status);
  fails(() => FrameImage.openRaw({ data: Buffer.alloc(0), width: 2, height: 2 }, 100), 'IMAGE_EMPTY', 400);
  fails(() => FrameImage.openRaw({ data: Buffer.alloc(3 * 11 * 10), width: 11, height: 10 }, 100), 'IMAGE_TOO_LARGE', 413);
  fails(() => FrameImage.openRaw({ data: Buffer.alloc(3 * 4 - 1), width: 2, height: 2 }, 100), 'IMAGE_INVALID', 422);
  fails(() => FrameImage.openRaw({ data: Buffer.alloc(4 * 4), width: 2, height: 2 }, 100), 'IMAGE_INVALID', 422);
  fails(() => FrameImage.openRaw({ data: Buffer.alloc(3), width: 0, height: 1 }, 100), 'BAD_REQUEST', 400);
  fails(() => FrameImage.openRaw({ data: Buffer.alloc(3), width: 1.5, height: 2 }, 100), 'BAD_REQUEST', 400);
});
