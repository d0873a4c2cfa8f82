import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { MOTION_THUMB, cropJpeg, detectImage, frameJpeg as wholeJpeg, motionThumbnail } from './frame-images.js';

const frame = async () => ({ jpeg: await frameJpeg(), width: 1920, height: 1080 });
const frameJpeg = () =>
  sharp({ create: { width: 1920, height: 1080, channels: 3, background: '#404040' } })
    .composite([{ input: { create: { width: 400, height: 200, channels: 3, background: '#f0f0f0' } }, left: 1200, top: 600 }])
    .jpeg()
    .toBuffer();

test('detect images: the crop shrunk to the detector input, with the scale back to crop pixels', async () => {
  const jpeg = await frame();
  const crop = { cropX1: 960, cropY1: 0, cropX2: 1920, cropY2: 1080 };
  const img = (await detectImage(jpeg, crop, { width: 640, height: 640 }, 85))!;
  const meta = await sharp(img.jpeg).metadata();
  assert.ok(meta.width! <= 640 && meta.height! <= 640, `${meta.width}x${meta.height}`);
  assert.deepEqual([img.cropWidth, img.cropHeight], [960, 1080]);
  assert.ok(Math.abs(meta.width! * img.scaleX - 960) < 1 && Math.abs(meta.height! * img.scaleY - 1080) < 1);
  // The bright block (crop x 240..640, y 600..800) is where the scale says it is.
  const { data, info } = await sharp(img.jpeg).greyscale().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => data[Math.round(y / img.scaleY) * info.width + Math.round(x / img.scaleX)]!;
  assert.ok(at(440, 700) > 200 && at(100, 100) < 100);

  const small = (await detectImage(jpeg, { cropX1: 0, cropY1: 0, cropX2: 320, cropY2: 240 }, { width: 640, height: 640 }, 85))!;
  assert.deepEqual([small.scaleX, small.scaleY], [1, 1], 'a crop smaller than the input is not enlarged');
  const whole = (await detectImage(jpeg, undefined, undefined, 85))!;
  assert.equal(whole.jpeg, jpeg.jpeg, 'nothing to do: the frame itself');
  assert.equal(await detectImage(jpeg, { cropX1: 3000, cropY1: 0, cropX2: 3100, cropY2: 10 }, undefined, 85), undefined);
  assert.equal(await cropJpeg(jpeg, { cropX1: 3000, cropY1: 0, cropX2: 3100, cropY2: 10 }, 85), undefined);
});

test('motion thumbnails are tiny greyscale crops', async () => {
  const thumb = (await motionThumbnail(await frame(), { cropX1: 960, cropY1: 0, cropX2: 1920, cropY2: 1080 }))!;
  assert.equal(thumb.length, MOTION_THUMB.width * MOTION_THUMB.height);
});

test('pixel frames (RTSP): cut and shrunk without decoding, encoded once when sent whole', async () => {
  const { data, info } = await sharp(await frameJpeg()).raw().toBuffer({ resolveWithObject: true });
  const pixels = { rgb: data, width: info.width, height: info.height };
  const crop = { cropX1: 960, cropY1: 0, cropX2: 1920, cropY2: 1080 };
  const img = (await detectImage(pixels, crop, { width: 640, height: 640 }, 85))!;
  const meta = await sharp(img.jpeg).metadata();
  assert.deepEqual([meta.width, meta.height], [569, 640]);
  assert.ok(Math.abs(meta.width! * img.scaleX - 960) < 1e-9 && Math.abs(meta.height! * img.scaleY - 1080) < 1e-9);
  const grey = await sharp(img.jpeg).greyscale().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => grey.data[Math.round(y / img.scaleY) * grey.info.width + Math.round(x / img.scaleX)]!;
  assert.ok(at(440, 700) > 200 && at(100, 100) < 100, 'the bright block where the scale says');

  const whole = await wholeJpeg(pixels, 85);
  assert.equal(await wholeJpeg(pixels, 85), whole, 'one encoding per frame');
  assert.deepEqual([(await sharp(whole).metadata()).width, (await sharp(whole).metadata()).height], [1920, 1080]);
  const cut = (await cropJpeg(pixels, { cropX1: 1200, cropY1: 600, cropX2: 1600, cropY2: 800 }, 85))!;
  const stats = await sharp(cut).stats();
  assert.ok(stats.channels[0]!.mean > 200, 'the crop is the bright block');
  assert.equal(await cropJpeg(pixels, { cropX1: 3000, cropY1: 0, cropX2: 3100, cropY2: 10 }, 85), undefined);

  // Motion thumbnails from pixels match the JPEG path's picture: bright where the block is.
  const thumb = (await motionThumbnail(pixels, undefined))!;
  assert.equal(thumb.length, MOTION_THUMB.width * MOTION_THUMB.height);
  const cell = (x: number, y: number) => thumb[Math.floor((y / 1080) * MOTION_THUMB.height) * MOTION_THUMB.width + Math.floor((x / 1920) * MOTION_THUMB.width)]!;
  assert.ok(cell(1400, 700) > 200 && cell(200, 200) < 100);
});
