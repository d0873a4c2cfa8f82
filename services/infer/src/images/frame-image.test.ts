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
