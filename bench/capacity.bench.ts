/**
 * Capacity micro-costs (issue 13), in one run on a 1080p frame of traffic_1080p.mp4:
 * - relay: the motion thumbnail, the shrunk detect-stage image as JPEG and as raw RGB
 *   (DETECT_FRAMES), and the full-resolution crop (CPU ms per frame, this process);
 * - infer: decode + preprocess of a detect-stage request carrying the 1080p frame, the shrunk
 *   JPEG, and the shrunk raw RGB frame (infer's own timings, in-process, p50 / p95), and whether
 *   the raw frame finds the JPEG's boxes.
 * Run: npm run build && node bench/dist/capacity.bench.js   (BENCH_ITERATIONS=60)
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer } from '@detector-worker/infer/start';
import { cropJpeg, detectImage, motionThumbnail } from '@detector-worker/relay/infer-link/frame-images';
import { fixturePath } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';

const N = Number(process.env.BENCH_ITERATIONS ?? 60);
const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? NaN;
const r2 = (n: number) => Math.round(n * 100) / 100;

async function cpuPerCall(fn: () => Promise<unknown>): Promise<{ cpuMs: number; wallMs: number }> {
  for (let i = 0; i < 5; i++) await fn();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn();
  const c = process.cpuUsage(c0);
  return { cpuMs: r2((c.user + c.system) / 1000 / N), wallMs: r2((performance.now() - t0) / N) };
}

const work = await mkdtemp(join(tmpdir(), 'capacity-bench-'));
try {
  const frame = join(work, 'frame.jpg');
  execFileSync('ffmpeg', ['-v', 'error', '-ss', '10', '-i', fixturePath('video/traffic_1080p.mp4'), '-frames:v', '1', '-q:v', '3', frame]);
  const frameJpeg = await readFile(frame);
  // As a camera reader delivers it: the JPEG with its size.
  const jpeg = { jpeg: frameJpeg, width: 1920, height: 1080 };
  const fit = { width: 640, height: 640 };

  const relay = {
    motion: await cpuPerCall(() => motionThumbnail(jpeg, undefined)),
    detectImage: await cpuPerCall(() => detectImage(jpeg, undefined, fit, 85)),
    detectRaw: await cpuPerCall(() => detectImage(jpeg, undefined, fit, 85, 'raw')),
    fullCrop: await cpuPerCall(() => cropJpeg(jpeg, { cropX1: 0, cropY1: 0, cropX2: 1920, cropY2: 1080 }, 85)),
  };
  const small = (await detectImage(jpeg, undefined, fit, 85))!;
  const raw = (await detectImage(jpeg, undefined, fit, 85, 'raw'))!;
  if (!raw.raw) throw new Error('the raw detect image came out as JPEG');

  const archive = await writeMpta(work, 'det.mpta', {
    pipeline: { pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'] } },
    files: { 'det.onnx': await readFile(fixturePath('models/yolov8n_fp32.onnx')) },
  });
  const infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache'), workers: 1 }, pino({ level: 'silent' }));
  try {
    type Box = [number, number, number, number];
    const send = async (body: Buffer, size?: { width: number; height: number }) => {
      const query = `stage=detect&modelUrl=${encodeURIComponent(`file://${archive}`)}${size ? `&width=${size.width}&height=${size.height}` : ''}`;
      const r = await request(`${infer.url}/v1/models/det/infer?${query}`, { method: 'POST', body, headers: { 'content-type': size ? 'application/x-rgb24' : 'image/jpeg' } });
      const answer = (await r.body.json()) as { timings: { decode: number; preprocess: number; inference: number }; result: { detections?: Array<{ class: string; confidence: number; bbox: Box }> } | null };
      if (r.statusCode !== 200) throw new Error(`infer answered ${r.statusCode}: ${JSON.stringify(answer)}`);
      return answer;
    };
    const inferSide = async (body: Buffer, size?: { width: number; height: number }) => {
      const pre: number[] = [];
      const inf: number[] = [];
      let boxes: Array<{ class: string; confidence: number; bbox: Box }> = [];
      for (let i = 0; i < 3; i++) await send(body, size);
      for (let i = 0; i < Math.min(N, 40); i++) {
        const a = await send(body, size);
        pre.push(a.timings.decode + a.timings.preprocess);
        inf.push(a.timings.inference);
        boxes = a.result?.detections ?? [];
      }
      return { preprocessP50: r2(pct(pre, 50)), preprocessP95: r2(pct(pre, 95)), inferenceP50: r2(pct(inf, 50)), boxes };
    };
    const full = await inferSide(frameJpeg);
    const shrunk = await inferSide(small.body);
    const rawSide = await inferSide(raw.body, raw.raw);
    // The raw frame skips the JPEG round trip, so its pixels differ by the compression noise:
    // each JPEG box is matched with the raw box of its class that overlaps it most.
    const iou = (a: Box, b: Box) => {
      const inter = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
      return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
    };
    /**
     * Whether two answers found the same boxes, and how far apart their edges are. With
     * `minScore`, only whether each box of `as` that sure has a match among all of `bs`.
     */
    const compare = (all: Array<{ class: string; confidence: number; bbox: Box }>, bs: Array<{ class: string; confidence: number; bbox: Box }>, minScore = 0): string => {
      const as = all.filter((a) => a.confidence >= minScore);
      const used = new Set<number>();
      let edge = 0;
      let minIou = 1;
      for (const a of as) {
        let best = -1;
        for (let j = 0; j < bs.length; j++) {
          const b = bs[j]!;
          if (!used.has(j) && b.class === a.class && (best < 0 || iou(a.bbox, b.bbox) > iou(a.bbox, bs[best]!.bbox))) best = j;
        }
        if (best < 0) break;
        used.add(best);
        minIou = Math.min(minIou, iou(a.bbox, bs[best]!.bbox));
        edge = Math.max(edge, ...a.bbox.map((v, k) => Math.abs(v - bs[best]!.bbox[k]!)));
      }
      if (used.size !== as.length || (!minScore && used.size !== bs.length)) return 'not the same';
      return edge === 0 ? 'the same' : `the same, edges within ${edge} px, IoU ≥ ${minIou.toFixed(2)}`;
    };
    const same = compare(shrunk.boxes, rawSide.boxes);
    // Weak boxes (a car half hidden at the edge) move with any pixel noise; the tracker matches on confident ones (highScore 0.4).
    const sameSure = compare(shrunk.boxes, rawSide.boxes, 0.4);
    const rawVsFull = compare(full.boxes.map((b) => ({ ...b, bbox: b.bbox.map((v) => v / small.scaleX) as Box })), rawSide.boxes);
    const jpegVsFull = compare(full.boxes.map((b) => ({ ...b, bbox: b.bbox.map((v) => v / small.scaleX) as Box })), shrunk.boxes);
    const counts = (side: { boxes: unknown[] }) => side.boxes.length;
    console.log(JSON.stringify({ frame: '1920x1080', shrunkTo: `${Math.round(1920 / small.scaleX)}x${Math.round(1080 / small.scaleY)}`, bytes: { jpeg: small.body.length, raw: raw.body.length }, relayCpuMsPerFrame: relay, inferDetectStage: { full1080p: { ...full, boxes: counts(full) }, shrunk: { ...shrunk, boxes: counts(shrunk) }, raw: { ...rawSide, boxes: counts(rawSide), vsJpeg: same, vsJpegAtLeast04: sameSure } }, versus1080pIn640Pixels: { jpeg: jpegVsFull, raw: rawVsFull } }, null, 2));
    console.log(`\n| what | 1080p frame as is | shrunk in the relay, JPEG | shrunk in the relay, raw RGB (${raw.raw.width}×${raw.raw.height}) |`);
    console.log('|---|---|---|---|');
    console.log(`| infer decode + preprocess per detect request, p50 / p95 (ms) | ${full.preprocessP50} / ${full.preprocessP95} | ${shrunk.preprocessP50} / ${shrunk.preprocessP95} | ${rawSide.preprocessP50} / ${rawSide.preprocessP95} |`);
    console.log(`| infer inference p50 (ms) | ${full.inferenceP50} | ${shrunk.inferenceP50} | ${rawSide.inferenceP50} |`);
    console.log(`| boxes found | ${counts(full)} | ${counts(shrunk)} | ${counts(rawSide)} (${same} as the JPEG; the JPEG's boxes ≥ 0.4: ${sameSure}) |`);
    console.log(`| bytes sent | ${frameJpeg.length} | ${small.body.length} | ${raw.body.length} |`);
    console.log(`| relay CPU per frame (ms) | full-resolution crop ${relay.fullCrop.cpuMs} | detect image ${relay.detectImage.cpuMs} | detect image ${relay.detectRaw.cpuMs} |`);
    console.log(`\nrelay CPU per frame: motion thumbnail ${relay.motion.cpuMs} ms`);
  } finally {
    await infer.close();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
