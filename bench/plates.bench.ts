/**
 * Plate benchmark (issue 12), in-process infer on loopback, fixture models:
 *  1. OCR per plate: the fast-plate-ocr node's own time (fit + tensor + run + decode) on a
 *     plate crop, from the answer's per-node timings;
 *  2. the three-level pipeline (yolov8n vehicle -> HyperLPR plate on the vehicle crop -> OCR
 *     on the plate crop) on a 1920x1080 photo at concurrency 1: request latency p50/p95;
 *  3. rectification: reads and confidences with and without the perspective warp on the
 *     fixture photos with a plate.
 * Run: npm run bench:plates   (BENCH_RUNS=40)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer } from '@detector-worker/infer/start';
import { fixturePath } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';

const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const pct = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] ?? NaN;
const r1 = (n: number) => Math.round(n * 10) / 10;

const work = mkdtempSync(join(tmpdir(), 'bench-plates-'));
const infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache'), maxModels: 8 }, pino({ level: 'silent' }));

const files = {
  'plate_ocr.onnx': readFileSync(fixturePath('models/plate_ocr_cct_xs_global.onnx')),
  'plate_ocr.yaml': readFileSync(fixturePath('models/plate_ocr_cct_xs_global.yaml')),
  'plate_det.onnx': readFileSync(fixturePath('models/plate_det_y5fu_320.onnx')),
  'vehicle.onnx': readFileSync(fixturePath('models/yolov8n_fp32.onnx')),
};
const ocrNode = (rectify: boolean) => ({ modelId: 'plate_ocr', modelFile: 'plate_ocr.onnx', minConfidence: 0.3, triggerClasses: ['single', 'double'], crop: true, task: 'ocr', ocr: { config: 'plate_ocr.yaml', rectify, minConfidence: 0 } });
const plateNode = (rectify: boolean) => ({ modelId: 'plate_det', modelFile: 'plate_det.onnx', minConfidence: 0.4, triggerClasses: ['single', 'double'], classNames: ['single', 'double'], iouThreshold: 0.5, preprocess: { padValue: 0 }, branches: [ocrNode(rectify)] });

async function archive(name: string, pipeline: object): Promise<string> {
  return `?modelUrl=${encodeURIComponent(`file://${await writeMpta(work, `${name}.mpta`, { pipeline: { pipeline }, files })}`)}`;
}

async function post(id: string, query: string, body: Buffer, type = 'image/jpeg'): Promise<{ ms: number; body: any }> {
  const t0 = performance.now();
  const r = await request(`${infer.url}/v1/models/${id}/infer${query}`, { method: 'POST', body, headers: { 'content-type': type } });
  const json = (await r.body.json()) as any;
  if (r.statusCode !== 200) throw new Error(`${id}: ${r.statusCode} ${JSON.stringify(json)}`);
  return { ms: performance.now() - t0, body: json };
}

try {
  // 1. OCR per plate.
  const ocrQuery = await archive('ocr', { ...ocrNode(true), crop: undefined });
  const crop = readFileSync(fixturePath('images/plates/plate_ar_1_crop.png'));
  await post('ocr', ocrQuery, crop, 'image/png');
  const ocrMs: number[] = [];
  const ocrRequestMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await post('ocr', ocrQuery, crop, 'image/png');
    const node = r.body.timings?.nodes?.plate_ocr ?? r.body.nodes?.plate_ocr;
    if (node) ocrMs.push(node.preprocess + node.inference);
    ocrRequestMs.push(r.ms);
  }
  console.log(`OCR per plate (plate_ar_1_crop.png, ${RUNS} runs): node p50 ${r1(pct(ocrMs, 50))} ms, p95 ${r1(pct(ocrMs, 95))} ms; whole request p50 ${r1(pct(ocrRequestMs, 50))} ms`);

  // 2. Three-level pipeline on a 1080p photo, concurrency 1.
  const threeQuery = await archive('three', { modelId: 'vehicle', modelFile: 'vehicle.onnx', minConfidence: 0.3, triggerClasses: ['car', 'truck', 'bus'], branches: [{ ...plateNode(true), crop: true, triggerClasses: ['car', 'truck', 'bus'] }] });
  const frame = readFileSync(fixturePath('images/parking_plate_1080p.jpg'));
  const first = await post('three', threeQuery, frame);
  const lat: number[] = [];
  for (let i = 0; i < RUNS; i++) lat.push((await post('three', threeQuery, frame)).ms);
  console.log(`three-level pipeline on parking_plate_1080p.jpg (1920x1080), concurrency 1, ${RUNS} runs: p50 ${r1(pct(lat, 50))} ms, p95 ${r1(pct(lat, 95))} ms; detection ${JSON.stringify(first.body.detection)}`);

  // 3. Rectified vs box crop (both with the 5% margin), plate detector at the root.
  const withQ = await archive('rect', plateNode(true));
  const withoutQ = await archive('flat', plateNode(false));
  console.log('rectification (read, weakest-character confidence): photo | warped quad | box');
  for (const photo of ['car_rear_plate_1280.jpg', 'car_front_plate_closeup.jpg', 'parking_plate_1080p.jpg', 'trafficcam_car_plate_320.jpg', 'trafficcam_truck_plate_320.jpg', 'dashcam_parked_1640x590.jpg']) {
    const body = readFileSync(fixturePath(`images/${photo}`));
    const show = (b: any) => {
      const read = b.result?.branch_results?.plate_ocr;
      return read ? `${read.characters.map((c: any) => c.char).join('') || '-'} ${read.confidence}` : 'no plate';
    };
    const a = await post('rect', withQ, body);
    const b = await post('flat', withoutQ, body);
    console.log(`  ${photo} [${a.body.result?.class ?? '-'}] | ${show(a.body)} | ${show(b.body)}`);
  }
} finally {
  await infer.close();
  rmSync(work, { recursive: true, force: true });
}
