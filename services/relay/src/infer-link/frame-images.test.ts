import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { MOTION_THUMB, cropJpeg, detectImage, motionThumbnail } from './frame-images.js';

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
