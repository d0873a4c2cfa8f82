/**
 * Shrunk detect frames (issue 13): the relay sends a detect-stage frame shrunk to the root
 * detector's input (detectImage), and maps the boxes back with its scale. Infer would letterbox
 * the full frame down to the same size anyway, so the boxes must agree with those of the
 * full-resolution frame, within resampling noise. Checked on fixture photos against the real
 * infer (YOLOv8n fp32, 640 input), whole frames and one crop.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { detectImage } from '@detector-worker/relay/infer-link/frame-images';
import { PpmSplitter, type Preview } from '@detector-worker/relay/cameras/preview';
import { previewFilter } from '@detector-worker/relay/cameras/rtsp-reader';
import type { CropBox } from '@detector-worker/shared/protocol/messages';
import { fixture } from '@detector-worker/testkit/fixtures';
import { writeMpta, STANDARD_DETECTOR_FILE } from '@detector-worker/testkit/mpta';

type Box = [number, number, number, number];
interface Det { className: string; confidence: number; box: Box }

/** Boxes this sure must be found again, with the same class, closely matching. */
const SURE = 0.5;
/** A sure box's match: IoU at least this... */
const MIN_IOU = 0.85;
/** ...and no edge further off than this share of the image width. */
const MAX_EDGE_SHARE = 0.02;

let work: string;
let infer: RunningInfer | undefined;
let modelUrl: string | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'infer-downscale-'));
  const detector = fixture({ skip: () => undefined }, `models/${STANDARD_DETECTOR_FILE}`);
  if (!detector) return;
  const archive = await writeMpta(work, 'detector.mpta', {
    pipeline: {
      pipeline: {
        modelId: 'det', modelFile: STANDARD_DETECTOR_FILE, minConfidence: 0.25, multiClass: true, crop: false,
        triggerClasses: ['car', 'truck', 'bus', 'person', 'motorcycle'],
      },
    },
    files: { [STANDARD_DETECTOR_FILE]: await readFile(detector) },
  });
  modelUrl = `file://${archive}`;
  infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'silent' }));
});

after(async () => {
  await infer?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** `raw`: the body is raw RGB of that size (application/x-rgb24). */
async function detect(image: Buffer, raw?: { width: number; height: number }): Promise<{ dets: Det[]; modelInput: { width: number; height: number }; body: any }> {
  const size = raw ? `&width=${raw.width}&height=${raw.height}` : '';
  const r = await request(`${infer!.url}/v1/models/downscale/infer?modelUrl=${encodeURIComponent(modelUrl!)}&stage=detect${size}`, {
    method: 'POST', body: image, headers: { 'content-type': raw ? 'application/x-rgb24' : 'image/jpeg' },
    headersTimeout: 30_000, bodyTimeout: 30_000,
  });
  const body = (await r.body.json()) as any;
  assert.equal(r.statusCode, 200, JSON.stringify(body));
  assert.ok(body.modelInput && body.modelInput.width > 0 && body.modelInput.height > 0, `modelInput ${JSON.stringify(body.modelInput)}`);
  const dets: Det[] = (body.result?.detections ?? []).map((d: any) => ({ className: d.class, confidence: d.confidence, box: d.bbox as Box }));
  return { dets, modelInput: body.modelInput, body };
}

const iou = (a: Box, b: Box): number => {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
};
const edgeDeviation = (a: Box, b: Box): number => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

const countByClass = (dets: Det[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const d of dets) out[d.className] = (out[d.className] ?? 0) + 1;
  return out;
};

interface Comparison { problems: string[]; maxDeviationPx: number; minIou: number; sure: number }

/**
 * Every sure full-resolution box has a same-class shrunk box with IoU ≥ MIN_IOU and edges within
 * MAX_EDGE_SHARE of the width; per class, the counts differ by at most one (a marginal box near
 * minConfidence may come or go with resampling).
 */
function compare(full: Det[], shrunk: Det[], width: number): Comparison {
  const problems: string[] = [];
  let maxDeviationPx = 0;
  let minIou = 1;
  const taken = new Set<number>();
  const sure = full.filter((d) => d.confidence >= SURE).sort((a, b) => b.confidence - a.confidence);
  for (const d of sure) {
    let best = -1;
    let bestIou = 0;
    shrunk.forEach((s, i) => {
      if (taken.has(i) || s.className !== d.className) return;
      const v = iou(d.box, s.box);
      if (v > bestIou) { bestIou = v; best = i; }
    });
    if (best < 0) { problems.push(`${d.className} ${d.confidence.toFixed(2)} [${d.box.map(Math.round)}]: no ${d.className} box in the shrunk frame`); continue; }
    taken.add(best);
    const dev = edgeDeviation(d.box, shrunk[best]!.box);
    maxDeviationPx = Math.max(maxDeviationPx, dev);
    minIou = Math.min(minIou, bestIou);
    if (bestIou < MIN_IOU || dev > MAX_EDGE_SHARE * width) {
      problems.push(`${d.className} ${d.confidence.toFixed(2)} [${d.box.map(Math.round)}] vs [${shrunk[best]!.box.map(Math.round)}]: IoU ${bestIou.toFixed(3)}, edge off by ${dev.toFixed(1)} px`);
    }
  }
  const a = countByClass(full);
  const b = countByClass(shrunk);
  for (const c of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (Math.abs((a[c] ?? 0) - (b[c] ?? 0)) > 1) problems.push(`${c}: ${a[c] ?? 0} boxes at full resolution, ${b[c] ?? 0} shrunk`);
  }
  return { problems, maxDeviationPx, minIou, sure: sure.length };
}

const fmt = (dets: Det[]) => dets.map((d) => `${d.className} ${d.confidence.toFixed(2)} [${d.box.map(Math.round)}]`).join('; ');

const CASES: Array<{ image: string; crop?: CropBox; label: string }> = [
  { image: 'images/parking_plate_1080p.jpg', label: '1920x1080 sedan, van, motorcycle' },
  { image: 'images/traffic_road_1024x576.jpg', label: '1024x576 road, 17 vehicles' },
  { image: 'images/car_rear_plate_1280.jpg', label: '1280x823 progressive roadster' },
  { image: 'images/bus.jpg', label: '810x1080 portrait bus and people' },
  { image: 'images/parking_plate_1080p.jpg', crop: { cropX1: 0, cropY1: 0, cropX2: 960, cropY2: 1080 }, label: 'left half of the 1080p photo' },
];

/**
 * A case's photo, its size, and infer's boxes on the full-resolution reference: the crop itself,
 * as a full run would send it. Undefined when the test was skipped.
 */
async function photoCase(t: TestContext, c: (typeof CASES)[number]) {
  if (!infer || !modelUrl) return void t.skip('fixture models/yolov8n_fp32.onnx missing');
  const path = fixture(t, c.image);
  if (!path) return undefined;
  const photo = await readFile(path);
  const reference = c.crop
    ? await sharp(photo).extract({ left: c.crop.cropX1, top: c.crop.cropY1, width: c.crop.cropX2 - c.crop.cropX1, height: c.crop.cropY2 - c.crop.cropY1 }).jpeg({ quality: 95 }).toBuffer()
    : photo;
  return { path, photo, full: await detect(reference), size: await sharp(photo).metadata() };
}

for (const c of CASES) {
  test(`shrunk detect frame gives the full-resolution boxes: ${c.label}`, async (t) => {
    const loaded = await photoCase(t, c);
    if (!loaded) return;
    const { photo, full, size } = loaded;
    const image = await detectImage({ jpeg: photo, width: size.width!, height: size.height! }, c.crop, full.modelInput, 85);
    assert.ok(image, 'detectImage gave no image');
    const meta = await sharp(image.body).metadata();
    assert.ok((meta.width ?? 0) <= full.modelInput.width && (meta.height ?? 0) <= full.modelInput.height,
      `shrunk image ${meta.width}x${meta.height} exceeds the model input ${full.modelInput.width}x${full.modelInput.height}`);
    assert.ok(image.scaleX > 1 && image.scaleY > 1, `not shrunk: scale ${image.scaleX}, ${image.scaleY}`);
    const small = await detect(image.body);
    const shrunk = small.dets.map((d) => ({ ...d, box: [d.box[0] * image.scaleX, d.box[1] * image.scaleY, d.box[2] * image.scaleX, d.box[3] * image.scaleY] as Box }));

    const result = compare(full.dets, shrunk, image.cropWidth);
    t.diagnostic(`${c.image}${c.crop ? ' (left half)' : ''}: ${image.cropWidth}x${image.cropHeight} -> ${meta.width}x${meta.height} (${photo.length} -> ${image.body.length} bytes); ` +
      `${full.dets.length} boxes full, ${shrunk.length} shrunk; ${result.sure} sure boxes: max edge deviation ${result.maxDeviationPx.toFixed(1)} px ` +
      `(${((100 * result.maxDeviationPx) / image.cropWidth).toFixed(2)} % of the width), min IoU ${result.minIou.toFixed(3)}`);
    assert.ok(result.sure > 0, `no box ≥ ${SURE} at full resolution: ${fmt(full.dets)}`);
    assert.deepEqual(result.problems, [], `\nfull:   ${fmt(full.dets)}\nshrunk: ${fmt(shrunk)}`);
  });
}

/** The preview an RTSP camera's ffmpeg would make of this picture (FRAME_PREVIEW_WIDTH). */
async function ffmpegPreview(path: string, width: number): Promise<Preview> {
  const { stdout } = await promisify(execFile)('ffmpeg', ['-v', 'error', '-nostdin', '-i', path, '-vf', previewFilter(width), '-f', 'image2pipe', '-c:v', 'ppm', 'pipe:1'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  const { images, error } = new PpmSplitter().push(stdout);
  assert.equal(error, undefined);
  assert.equal(images.length, 1);
  return images[0]!;
}

/**
 * Detect images cut from a frame's preview (FRAME_PREVIEW_WIDTH=640, ffmpeg's fast scaler, then
 * sharp's linear shrink) find the full-resolution boxes too. Where the preview holds the pixels
 * the detector needs, the JPEG is not touched (it is empty here); the left half of the 1080p
 * photo needs more (569 px wide, the preview has 320) and is cut from the JPEG.
 */
for (const c of CASES) {
  test(`detect image from the frame's preview gives the full-resolution boxes: ${c.label}`, async (t) => {
    const loaded = await photoCase(t, c);
    if (!loaded) return;
    const { path, photo, full, size } = loaded;
    const preview = await ffmpegPreview(path, 640);
    const fromJpeg = c.crop !== undefined;
    const frame = { jpeg: fromJpeg ? photo : Buffer.alloc(0), width: size.width!, height: size.height!, preview };
    const image = await detectImage(frame, c.crop, full.modelInput, 85, 'raw');
    assert.ok(image?.raw, 'a raw detect image');
    const small = await detect(image.body, image.raw);
    const back = small.dets.map((d) => ({ ...d, box: [d.box[0] * image.scaleX, d.box[1] * image.scaleY, d.box[2] * image.scaleX, d.box[3] * image.scaleY] as Box }));
    const result = compare(full.dets, back, image.cropWidth);
    t.diagnostic(`${c.image}${c.crop ? ' (left half, from the JPEG)' : ''}: preview ${preview.width}x${preview.height} -> ${image.raw.width}x${image.raw.height}; ` +
      `${full.dets.length} boxes full, ${back.length} from the preview; ${result.sure} sure boxes: max edge deviation ${result.maxDeviationPx.toFixed(1)} px, min IoU ${result.minIou.toFixed(3)}`);
    assert.ok(result.sure > 0, `no box ≥ ${SURE} at full resolution: ${fmt(full.dets)}`);
    assert.deepEqual(result.problems, [], `\nfull:    ${fmt(full.dets)}\npreview: ${fmt(back)}`);
  });
}

/**
 * Raw detect frames (DETECT_FRAMES=raw): infer skips decoding, so its boxes must be exactly those
 * of a lossless PNG of the same pixels, both for a frame at the letterbox size (no sharp call in
 * infer) and for one that infer still resizes; and, mapped back, those of the full frame.
 */
test('raw detect frames: exactly the boxes of the same pixels as PNG, and the full-resolution boxes', async (t) => {
  if (!infer || !modelUrl) return t.skip('fixture models/yolov8n_fp32.onnx missing');
  const path = fixture(t, 'images/parking_plate_1080p.jpg');
  if (!path) return;
  const photo = await readFile(path);
  const full = await detect(photo);
  const frame = { jpeg: photo, width: 1920, height: 1080 };
  // A frame shrunk to 512 is one infer still resizes (sharp from the raw pixels).
  for (const [label, fit] of [['at the letterbox size', full.modelInput], ['shrunk to 512, resized by infer', { width: 512, height: 512 }]] as const) {
    const image = await detectImage(frame, undefined, fit, 85, 'raw');
    assert.ok(image?.raw, 'the detect image is raw');
    assert.equal(image.body.length, image.raw.width * image.raw.height * 3);
    const raw = await detect(image.body, image.raw);
    const png = await detect(await sharp(image.body, { raw: { ...image.raw, channels: 3 } }).png().toBuffer());
    assert.deepEqual(raw.body.result, png.body.result, `${label}: raw and PNG of the same pixels`);
    assert.ok(raw.body.timings.decode < 1, `${label}: decode ${raw.body.timings.decode} ms`);
    const ms = (b: any) => (b.timings.decode + b.timings.preprocess).toFixed(2);
    t.diagnostic(`${label}: ${image.raw.width}x${image.raw.height} raw, ${raw.dets.length} boxes as with PNG; decode + preprocess ${ms(raw.body)} ms (PNG ${ms(png.body)} ms)`);
    const back = raw.dets.map((d) => ({ ...d, box: [d.box[0] * image.scaleX, d.box[1] * image.scaleY, d.box[2] * image.scaleX, d.box[3] * image.scaleY] as Box }));
    const result = compare(full.dets, back, image.cropWidth);
    assert.deepEqual(result.problems, [], `\nfull: ${fmt(full.dets)}\nraw:  ${fmt(back)}`);
  }
});
