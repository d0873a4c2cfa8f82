import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { CodedError } from '@detector-worker/shared/errors';
import { fixture } from '@detector-worker/testkit/fixtures';
import { buildConstantOutputModel } from '@detector-worker/testkit/onnx-builder';
import { parseImgsz, parseLabelsFile, parseUltralyticsNames } from '@detector-worker/infer/inference/class-names';
import { PRODUCER_KEY, readOnnxMetadata } from '@detector-worker/infer/inference/onnx-metadata';

const corrupt = (e: unknown) => e instanceof CodedError && e.code === 'MODEL_CORRUPT' && e.statusCode === 422;

async function metaOf(t: { skip: (m?: string) => void }, name: string) {
  const path = fixture(t, `models/${name}`);
  return path ? readOnnxMetadata(await readFile(path)) : undefined;
}

test('yolov8n_fp32: 80 COCO names, car at 2, imgsz 640, task detect', async (t) => {
  const meta = await metaOf(t, 'yolov8n_fp32.onnx');
  if (!meta) return;
  assert.equal(meta.task, 'detect');
  const names = parseUltralyticsNames(meta.names!);
  assert.equal(names.length, 80);
  assert.equal(names[0], 'person');
  assert.equal(names[2], 'car');
  assert.equal(names[5], 'bus');
  assert.equal(names[7], 'truck');
  assert.deepEqual(parseImgsz(meta.imgsz!), [640, 640]);
});

test('yolo11n_int8_320: imgsz 320 and the int8 producer', async (t) => {
  const meta = await metaOf(t, 'yolo11n_int8_320.onnx');
  if (!meta) return;
  assert.deepEqual(parseImgsz(meta.imgsz!), [320, 320]);
  assert.equal(parseUltralyticsNames(meta.names!).length, 80);
  assert.equal(meta[PRODUCER_KEY], 'onnx.quantize');
});

test('car_color_cls: task classify with 8 names', async (t) => {
  const meta = await metaOf(t, 'car_color_cls.onnx');
  if (!meta) return;
  assert.equal(meta.task, 'classify');
  assert.deepEqual(parseUltralyticsNames(meta.names!), ['black', 'white', 'gray', 'red', 'blue', 'green', 'yellow', 'brown']);
});

test('models without metadata_props give only the producer', async (t) => {
  for (const name of ['mobilenetv2-12-int8.onnx', 'plate_det_y5fu_320.onnx']) {
    const meta = await metaOf(t, name);
    if (!meta) return;
    assert.deepEqual(Object.keys(meta), [PRODUCER_KEY], name);
  }
});

test('metadata written by the test builder reads back, including odd keys', () => {
  const model = buildConstantOutputModel({
    outputDims: [1, 2],
    values: [0, 1],
    metadata: { names: "{0: 'a', 1: \"b's\"}", task: 'classify', __proto__x: 'y', 'ключ': 'значение' },
  });
  const meta = readOnnxMetadata(model);
  assert.equal(meta.task, 'classify');
  assert.deepEqual(parseUltralyticsNames(meta.names!), ['a', "b's"]);
  assert.equal(meta['ключ'], 'значение');
  assert.equal(meta[PRODUCER_KEY], 'detector-worker-onnx-builder');
});

test('truncated model bytes are MODEL_CORRUPT', async (t) => {
  const path = fixture(t, 'models/car_color_cls.onnx');
  if (!path) return;
  const bytes = await readFile(path);
  // Every cut point of a small real model either still parses (cut between fields after the
  // graph) or fails with MODEL_CORRUPT: never another error.
  let corruptCount = 0;
  for (let cut = 0; cut < bytes.length; cut++) {
    try {
      readOnnxMetadata(bytes.subarray(0, cut));
    } catch (err) {
      assert.ok(corrupt(err), `cut at ${cut}: ${String(err)}`);
      corruptCount++;
    }
  }
  assert.ok(corruptCount > bytes.length / 2);
  // The big detector cut in the middle of its graph.
  const big = fixture(t, 'models/yolov8n_fp32.onnx');
  if (!big) return;
  const whole = await readFile(big);
  assert.throws(() => readOnnxMetadata(whole.subarray(0, 1_000_000)), corrupt);
});

test('fixture label files parse', async (t) => {
  const imagenet = fixture(t, 'models/imagenet_labels.json');
  const plate = fixture(t, 'models/plate_color_cls_96.labels.txt');
  if (!imagenet || !plate) return;
  const names = parseLabelsFile(await readFile(imagenet, 'utf8'));
  assert.equal(names.length, 1000);
  assert.equal(names[705], 'passenger car');
  assert.deepEqual(parseLabelsFile(await readFile(plate, 'utf8')), ['blue', 'green', 'yellow']);
});
