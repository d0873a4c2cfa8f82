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
  const meta = await sharp(img.body).metadata();
  assert.ok(meta.width! <= 640 && meta.height! <= 640, `${meta.width}x${meta.height}`);
  assert.deepEqual([img.cropWidth, img.cropHeight], [960, 1080]);
  assert.ok(Math.abs(meta.width! * img.scaleX - 960) < 1 && Math.abs(meta.height! * img.scaleY - 1080) < 1);
  // The bright block (crop x 240..640, y 600..800) is where the scale says it is.
  const { data, info } = await sharp(img.body).greyscale().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => data[Math.round(y / img.scaleY) * info.width + Math.round(x / img.scaleX)]!;
  assert.ok(at(440, 700) > 200 && at(100, 100) < 100);

  const small = (await detectImage(jpeg, { cropX1: 0, cropY1: 0, cropX2: 320, cropY2: 240 }, { width: 640, height: 640 }, 85))!;
  assert.deepEqual([small.scaleX, small.scaleY], [1, 1], 'a crop smaller than the input is not enlarged');
  const whole = (await detectImage(jpeg, undefined, undefined, 85))!;
  assert.equal(whole.body, jpeg.jpeg, 'nothing to do: the frame itself');
  assert.equal(await detectImage(jpeg, { cropX1: 3000, cropY1: 0, cropX2: 3100, cropY2: 10 }, undefined, 85), undefined);
  assert.equal(await cropJpeg(jpeg, { cropX1: 3000, cropY1: 0, cropX2: 3100, cropY2: 10 }, 85), undefined);
});

test('raw detect images: the shrunk crop as RGB pixels of the stated size, with the same scale as the JPEG', async () => {
  const jpeg = await frame();
  const crop = { cropX1: 960, cropY1: 0, cropX2: 1920, cropY2: 1080 };
  const fit = { width: 640, height: 640 };
  const raw = (await detectImage(jpeg, crop, fit, 85, 'raw'))!;
  const asJpeg = (await detectImage(jpeg, crop, fit, 85, 'jpeg'))!;
  assert.equal(asJpeg.raw, undefined);
  const meta = await sharp(asJpeg.body).metadata();
  assert.deepEqual(raw.raw, { width: meta.width, height: meta.height });
  assert.deepEqual([raw.raw!.width, raw.raw!.height], [569, 640]);
  assert.equal(raw.body.length, 569 * 640 * 3);
  assert.deepEqual([raw.cropWidth, raw.cropHeight, raw.scaleX, raw.scaleY], [asJpeg.cropWidth, asJpeg.cropHeight, asJpeg.scaleX, asJpeg.scaleY]);
  // The bright block is where the scale says, in the raw pixels too; and they are the JPEG's before compression.
  const at = (x: number, y: number) => raw.body[(Math.round(y / raw.scaleY) * raw.raw!.width + Math.round(x / raw.scaleX)) * 3]!;
  assert.ok(at(440, 700) > 200 && at(100, 100) < 100);
  const decoded = await sharp(asJpeg.body).raw().toBuffer();
  let diff = 0;
  for (let i = 0; i < decoded.length; i++) diff += Math.abs(decoded[i]! - raw.body[i]!);
  assert.ok(diff / decoded.length < 3, `mean difference ${diff / decoded.length}`);

  // A 1080p frame into a 640 detector: exactly the letterbox's resized size, which infer uses as it is.
  const whole = (await detectImage(jpeg, undefined, fit, 85, 'raw'))!;
  assert.deepEqual([whole.raw, whole.scaleX, whole.scaleY], [{ width: 640, height: 360 }, 3, 3]);
  // A crop smaller than the input is not enlarged, and still goes raw.
  const small = (await detectImage(jpeg, { cropX1: 0, cropY1: 0, cropX2: 320, cropY2: 240 }, fit, 85, 'raw'))!;
  assert.deepEqual([small.raw, small.scaleX], [{ width: 320, height: 240 }, 1]);
  // Until infer has said its input size, raw would be unbounded (a 4K frame is 25 MB): JPEG as is.
  const first = (await detectImage(jpeg, undefined, undefined, 85, 'raw'))!;
  assert.deepEqual([first.raw, first.body], [undefined, jpeg.jpeg]);
  // A greyscale camera still gives 3 channels.
  const grey = await sharp(jpeg.jpeg).greyscale().jpeg().toBuffer();
  const g = (await detectImage({ jpeg: grey, width: 1920, height: 1080 }, undefined, fit, 85, 'raw'))!;
  assert.equal(g.body.length, 640 * 360 * 3);
});

test('motion thumbnails are tiny greyscale crops', async () => {
  const thumb = (await motionThumbnail(await frame(), { cropX1: 960, cropY1: 0, cropX2: 1920, cropY2: 1080 }))!;
  assert.equal(thumb.length, MOTION_THUMB.width * MOTION_THUMB.height);
});

test('a frame with a preview gives its motion thumbnail and detect image from the preview, without its JPEG', async () => {
  const jpeg = await frameJpeg();
  // The preview ffmpeg would make at 640 wide: the same picture at a third of the size.
  const { data, info } = await sharp(jpeg).resize(640, 360).raw().toBuffer({ resolveWithObject: true });
  const preview = { width: info.width, height: info.height, rgb: data };
  const frame = { jpeg: Buffer.alloc(0), width: 1920, height: 1080, preview };
  const fit = { width: 640, height: 640 };

  const whole = (await detectImage(frame, undefined, fit, 85, 'raw'))!;
  assert.equal(whole.body, preview.rgb, 'the preview is the detect image: no copy');
  assert.deepEqual([whole.raw, whole.scaleX, whole.scaleY], [{ width: 640, height: 360 }, 3, 3]);

  const half = (await detectImage(frame, { cropX1: 960, cropY1: 0, cropX2: 1920, cropY2: 1080 }, { width: 160, height: 160 }, 85, 'raw'))!;
  assert.deepEqual([half.raw, half.cropWidth], [{ width: 142, height: 160 }, 960]);
  // The bright block (crop x 240..640, y 600..800) is where the scale says it is.
  const at = (x: number, y: number) => half.body[(Math.round(y / half.scaleY) * half.raw!.width + Math.round(x / half.scaleX)) * 3]!;
  assert.ok(at(440, 700) > 200 && at(100, 100) < 100);
  const asJpeg = (await detectImage(frame, undefined, fit, 85, 'jpeg'))!;
  assert.deepEqual((await sharp(asJpeg.body).metadata()).format, 'jpeg');

  const thumb = (await motionThumbnail(frame, undefined))!;
  assert.equal(thumb.length, MOTION_THUMB.width * MOTION_THUMB.height);
  const fromJpeg = (await motionThumbnail({ jpeg, width: 1920, height: 1080 }, undefined))!;
  const diff = thumb.reduce((s, v, i) => s + Math.abs(v - fromJpeg[i]!), 0) / thumb.length;
  assert.ok(diff < 8, `the preview's thumbnail is the JPEG's within resampling (mean difference ${diff.toFixed(1)})`);

  // A crop the preview has too few pixels of for the detector is cut from the JPEG.
  await assert.rejects(detectImage(frame, { cropX1: 0, cropY1: 0, cropX2: 960, cropY2: 1080 }, fit, 85, 'raw'), 'the (empty) JPEG is decoded');
  const withJpeg = (await detectImage({ ...frame, jpeg }, { cropX1: 0, cropY1: 0, cropX2: 960, cropY2: 1080 }, fit, 85, 'raw'))!;
  assert.deepEqual(withJpeg.raw, { width: 569, height: 640 });
});
