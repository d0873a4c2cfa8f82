/**
 * Capacity micro-costs (issue 13), in one run on a 1080p frame of traffic_1080p.mp4:
 * - relay: the motion thumbnail, the shrunk detect-stage image, and the full-resolution crop
 *   (CPU ms per frame, this process);
 * - infer: decode + preprocess of a detect-stage request carrying the 1080p frame against the
 *   shrunk image (infer's own timings, in-process, p50 / p95).
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
    fullCrop: await cpuPerCall(() => cropJpeg(jpeg, { cropX1: 0, cropY1: 0, cropX2: 1920, cropY2: 1080 }, 85)),
  };
  const small = (await detectImage(jpeg, undefined, fit, 85))!;

  const archive = await writeMpta(work, 'det.mpta', {
    pipeline: { pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'] } },
    files: { 'det.onnx': await readFile(fixturePath('models/yolov8n_fp32.onnx')) },
  });
  const infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache'), workers: 1 }, pino({ level: 'silent' }));
  try {
    const send = async (body: Buffer) => {
      const r = await request(`${infer.url}/v1/models/det/infer?stage=detect&modelUrl=${encodeURIComponent(`file://${archive}`)}`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' } });
      const answer = (await r.body.json()) as { timings: { decode: number; preprocess: number; inference: number }; result: { detections?: unknown[] } | null };
      return answer;
    };
    const inferSide = async (body: Buffer) => {
      const pre: number[] = [];
      const inf: number[] = [];
      let boxes = 0;
      for (let i = 0; i < 3; i++) await send(body);
      for (let i = 0; i < Math.min(N, 40); i++) {
        const a = await send(body);
        pre.push(a.timings.decode + a.timings.preprocess);
        inf.push(a.timings.inference);
        boxes = a.result?.detections?.length ?? 0;
      }
      return { preprocessP50: r2(pct(pre, 50)), preprocessP95: r2(pct(pre, 95)), inferenceP50: r2(pct(inf, 50)), boxes };
    };
    const full = await inferSide(frameJpeg);
    const shrunk = await inferSide(small.jpeg);
    console.log(JSON.stringify({ frame: '1920x1080', shrunkTo: `${Math.round(1920 / small.scaleX)}x${Math.round(1080 / small.scaleY)}`, relayCpuMsPerFrame: relay, inferDetectStage: { full1080p: full, shrunk } }, null, 2));
    console.log('\n| what | 1080p frame as is | shrunk in the relay |');
    console.log('|---|---|---|');
    console.log(`| infer decode + preprocess per detect request, p50 / p95 (ms) | ${full.preprocessP50} / ${full.preprocessP95} | ${shrunk.preprocessP50} / ${shrunk.preprocessP95} |`);
    console.log(`| infer inference p50 (ms) | ${full.inferenceP50} | ${shrunk.inferenceP50} |`);
    console.log(`| boxes found | ${full.boxes} | ${shrunk.boxes} |`);
    console.log(`| relay CPU per frame (ms): motion thumbnail ${relay.motion.cpuMs}, shrunk detect image ${relay.detectImage.cpuMs}, full-resolution crop ${relay.fullCrop.cpuMs} | | |`);
  } finally {
    await infer.close();
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
