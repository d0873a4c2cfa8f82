import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { CodedError } from '@detector-worker/shared/errors';
import { fixture } from '@detector-worker/shared/testing/fixtures';
import { buildConstantOutputModel } from '@detector-worker/shared/testing/onnx-builder';
import { parseImgsz, parseUltralyticsNames } from './class-names.js';
import { PRODUCER_KEY, readOnnxMetadata } from './onnx-metadata.js';

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

test('garbage and empty input are MODEL_CORRUPT', () => {
  assert.throws(() => readOnnxMetadata(new Uint8Array(0)), corrupt);
  assert.throws(() => readOnnxMetadata(Buffer.from('this is not an onnx model at all')), corrupt);
  assert.throws(() => readOnnxMetadata(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), corrupt);
  // A field-7 tag with an absurd length.
  assert.throws(() => readOnnxMetadata(Uint8Array.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f])), corrupt);
  // Well-formed protobuf without a graph is not a model.
  assert.throws(() => readOnnxMetadata(Uint8Array.from([0x08, 0x07])), /no graph/);
  // Deterministic pseudo-random bytes.
  let seed = 12345;
  for (let i = 0; i < 200; i++) {
    const junk = new Uint8Array(64);
    for (let j = 0; j < junk.length; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      junk[j] = seed >>> 24;
    }
    try {
      readOnnxMetadata(junk);
    } catch (err) {
      assert.ok(corrupt(err), String(err));
    }
  }
});
