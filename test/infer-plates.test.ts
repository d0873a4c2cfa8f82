/**
 * Licence plates with the real fixture models over HTTP on loopback: the fast-plate-ocr
 * reader on plate crops (an archive whose root is the OCR node), and the three-level
 * pipeline vehicle -> plate (HyperLPR, four corners) -> OCR on a full photo, whose flat CMS
 * detection must carry the plate text. Hostile OCR archives fail the load with a coded 422.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { fixture } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';

let work: string;
let infer: RunningInfer;

async function post(modelId: string, body: Buffer, archive: string, type = 'image/jpeg'): Promise<{ status: number; body: any }> {
  const query = `?modelUrl=${encodeURIComponent(`file://${archive}`)}`;
  const r = await request(`${infer.url}/v1/models/${modelId}/infer${query}`, { method: 'POST', body, headers: { 'content-type': type }, headersTimeout: 60_000, bodyTimeout: 60_000 });
  return { status: r.statusCode, body: await r.body.json() };
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'infer-plates-'));
  const config = { ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache'), maxModels: 6, failedRetryMs: 0 };
  infer = await startInfer(config, pino({ level: 'silent' }));
});

after(async () => {
  await infer?.close();
  await rm(work, { recursive: true, force: true });
});

export const OCR_NODE = { modelId: 'plate_ocr', modelFile: 'plate_ocr.onnx', minConfidence: 0.3, triggerClasses: ['single', 'double'], crop: true, task: 'ocr', ocr: { config: 'plate_ocr.yaml' } };
export const PLATE_NODE = {
  modelId: 'plate_det',
  modelFile: 'plate_det.onnx',
  minConfidence: 0.4,
  triggerClasses: ['single', 'double'],
  classNames: ['single', 'double'],
  iouThreshold: 0.5,
  preprocess: { padValue: 0 },
};

async function models(t: { skip: (m?: string) => void }, names: string[]): Promise<Record<string, Buffer> | undefined> {
  const files: Record<string, Buffer> = {};
  const map: Record<string, string> = {
    'plate_ocr.onnx': 'models/plate_ocr_cct_xs_global.onnx',
    'plate_ocr.yaml': 'models/plate_ocr_cct_xs_global.yaml',
    'plate_det.onnx': 'models/plate_det_y5fu_320.onnx',
    'vehicle.onnx': 'models/yolov8n_fp32.onnx',
  };
  for (const n of names) {
    const p = fixture(t, map[n]!);
    if (!p) return undefined;
    files[n] = await readFile(p);
  }
  return files;
}

describe('plate reader on crops (OCR node at the root)', () => {
  for (const [image, text, type] of [
    ['images/plates/plate_ar_1_crop.png', 'AD799KB', 'image/png'],
    ['images/plates/plate_ar_2_crop.png', 'KRW301', 'image/png'],
  ] as const) {
    test(`${image} reads ${text}`, async (t) => {
      const files = await models(t, ['plate_ocr.onnx', 'plate_ocr.yaml']);
      const photo = fixture(t, image);
      if (!files || !photo) return;
      const archive = await writeMpta(work, 'ocr-root.mpta', { pipeline: { pipeline: { ...OCR_NODE, crop: undefined, triggerClasses: ['plate'] } }, files });
      const r = await post('ocr-root', await readFile(photo), archive, type);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.result.text, text);
      assert.equal(r.body.result.characters.length, text.length);
      assert.ok(r.body.result.confidence >= 0.9, `confidence ${r.body.result.confidence}`);
    });
  }
});

describe('vehicle -> plate -> OCR on full photos', () => {
  test('car_rear_plate_1280.jpg: licensePlateText DR68651 in the CMS detection', async (t) => {
    const files = await models(t, ['plate_ocr.onnx', 'plate_ocr.yaml', 'plate_det.onnx', 'vehicle.onnx']);
    const photo = fixture(t, 'images/car_rear_plate_1280.jpg');
    if (!files || !photo) return;
    const pipeline = {
      pipeline: {
        modelId: 'vehicle',
        modelFile: 'vehicle.onnx',
        minConfidence: 0.3,
        triggerClasses: ['car', 'truck', 'bus'],
        branches: [{ ...PLATE_NODE, crop: true, triggerClasses: ['car', 'truck', 'bus'], branches: [OCR_NODE] }],
      },
    };
    const archive = await writeMpta(work, 'three-level.mpta', { pipeline, files });
    const r = await post('three-level', await readFile(photo), archive);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.detection.licensePlateText, 'DR68651', JSON.stringify(r.body.detection));
    assert.equal(r.body.detection.licensePlateType, 'single');
    assert.ok(r.body.detection.licensePlateConfidence >= 0.9);
    assert.equal(r.body.result.branch_results.plate_det.branch_results.plate_ocr.text, 'DR68651');
  });

  test('plate crop from the detector (margin, rectified) reads DR68651 and the double-line truck plate is no read with a reason', async (t) => {
    const files = await models(t, ['plate_ocr.onnx', 'plate_ocr.yaml', 'plate_det.onnx']);
    const car = fixture(t, 'images/car_rear_plate_1280.jpg');
    const truck = fixture(t, 'images/trafficcam_truck_plate_320.jpg');
    if (!files || !car || !truck) return;
    const archive = await writeMpta(work, 'plate-ocr.mpta', { pipeline: { pipeline: { ...PLATE_NODE, branches: [OCR_NODE] } }, files });
    const a = await post('plate-ocr', await readFile(car), archive);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.detection.licensePlateText, 'DR68651');
    const b = await post('plate-ocr', await readFile(truck), archive);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.result.class, 'double');
    const read = b.body.result.branch_results.plate_ocr;
    assert.equal(read.text, null);
    assert.match(read.reason, /below/);
    assert.equal(b.body.detection.licensePlateText, undefined);
    assert.equal(b.body.detection.licensePlateType, undefined, 'the plate detector is the root here, so its class is the detection class');
  });
});

describe('hostile OCR archives fail the load with a coded 422', () => {
  const cases: Array<[string, (f: Record<string, Buffer>) => { pipeline: object; files: Record<string, Buffer | string> }, string, RegExp]> = [
    ['config file missing', (f) => ({ pipeline: { pipeline: { ...OCR_NODE, crop: undefined } }, files: { 'plate_ocr.onnx': f['plate_ocr.onnx']! } }), 'MODEL_FILE_MISSING', /ocr\.config/],
    ['config without alphabet', (f) => ({ pipeline: { pipeline: { ...OCR_NODE, crop: undefined } }, files: { 'plate_ocr.onnx': f['plate_ocr.onnx']!, 'plate_ocr.yaml': 'max_plate_slots: 9\n' } }), 'PIPELINE_INVALID', /no alphabet/],
    [
      'alphabet one short of the model',
      (f) => ({ pipeline: { pipeline: { ...OCR_NODE, crop: undefined, ocr: { alphabet: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ' , padChar: 'Z' } } }, files: { 'plate_ocr.onnx': f['plate_ocr.onnx']! } }),
      'MODEL_OUTPUT_UNSUPPORTED',
      /37 classes per slot; the alphabet has 36/,
    ],
    ['a detector as an OCR model', (f) => ({ pipeline: { pipeline: { ...OCR_NODE, crop: undefined, modelFile: 'plate_det.onnx' } }, files: { 'plate_det.onnx': f['plate_det.onnx']!, 'plate_ocr.yaml': f['plate_ocr.yaml']! } }), 'MODEL_OUTPUT_UNSUPPORTED', /\[1, 6300, 15\]/],
    ['OCR node with branches', (f) => ({ pipeline: { pipeline: { ...OCR_NODE, crop: undefined, branches: [{ ...OCR_NODE, modelId: 'x' }] } }, files: f }), 'PIPELINE_INVALID', /no branches|cannot have branches/],
    ['bad format regex', (f) => ({ pipeline: { pipeline: { ...OCR_NODE, crop: undefined, ocr: { config: 'plate_ocr.yaml', format: '([A-Z' } } }, files: f }), 'PIPELINE_INVALID', /regular expression/],
  ];
  for (const [name, build, code, message] of cases) {
    test(name, async (t) => {
      const files = await models(t, ['plate_ocr.onnx', 'plate_ocr.yaml', 'plate_det.onnx']);
      if (!files) return;
      const spec = build(files);
      const id = `hostile-${name.replace(/[^a-z]+/g, '-')}`;
      const archive = await writeMpta(work, `${id}.mpta`, spec);
      const started = Date.now();
      const r = await post(id, await readFile(fixture(t, 'images/plates/plate_ar_2_crop.png')!), archive, 'image/png');
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.code, code, JSON.stringify(r.body));
      assert.match(r.body.message, message);
      t.diagnostic(`${code} in ${Date.now() - started} ms: ${r.body.message}`);
    });
  }
});
