import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodedError } from '@detector-worker/shared/errors';
import { readOnnxMetadata } from './onnx-metadata.js';

const corrupt = (e: unknown) => e instanceof CodedError && e.code === 'MODEL_CORRUPT' && e.statusCode === 422;

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
