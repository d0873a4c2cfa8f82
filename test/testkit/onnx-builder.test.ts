import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { buildConstantOutputModel, buildMeanClassifierModel, buildOnnxModel, buildWeirdOutputModel } from '@detector-worker/testkit/onnx-builder';

async function session(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { logSeverityLevel: 3, intraOpNumThreads: 1 });
}

function tensorShape(meta: ort.InferenceSession.ValueMetadata | undefined): ReadonlyArray<number | string> {
  assert.ok(meta?.isTensor);
  return meta.shape;
}

test('Identity model loads and passes the input through', async () => {
  const model = buildOnnxModel({
    inputs: [{ name: 'x', dims: ['batch', 4] }],
    outputs: [{ name: 'y', dims: ['batch', 4] }],
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
  });
  const s = await session(model);
  try {
    assert.deepEqual(s.inputNames, ['x']);
    assert.deepEqual(s.outputNames, ['y']);
    assert.deepEqual(tensorShape(s.inputMetadata[0]), ['batch', 4]);
    const x = new Float32Array([1, -2, 3.5, 4, 5, 6, 7, 8]);
    const out = await s.run({ x: new ort.Tensor('float32', x, [2, 4]) });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), Array.from(x));
  } finally {
    await s.release();
  }
});

test('constant-output model returns its values for any input and declares its shape', async () => {
  const n = 16;
  const values = Float32Array.from({ length: 84 * n }, (_, i) => (i % 97) / 97);
  const model = buildConstantOutputModel({ inputDims: [1, 3, 32, 32], outputDims: [1, 84, n], values, metadata: { task: 'detect' } });
  const s = await session(model);
  try {
    assert.deepEqual(tensorShape(s.outputMetadata[0]), [1, 84, n]);
    const input = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => (i % 255) / 255);
    const out = await s.run({ images: new ort.Tensor('float32', input, [1, 3, 32, 32]) });
    const t = out.output0!;
    assert.deepEqual(t.dims, [1, 84, n]);
    assert.deepEqual(Array.from(t.data as Float32Array), Array.from(values));
  } finally {
    await s.release();
  }
});

test('weird-output model runs and gives a [1,7,7,7] tensor', async () => {
  const s = await session(buildWeirdOutputModel());
  try {
    assert.deepEqual(tensorShape(s.outputMetadata[0]), [1, 7, 7, 7]);
    const out = await s.run({ images: new ort.Tensor('float32', new Float32Array(3 * 32 * 32), [1, 3, 32, 32]) });
    assert.deepEqual(out.output0!.dims, [1, 7, 7, 7]);
  } finally {
    await s.release();
  }
});

test('mean classifier: per-channel means through MatMul, with and without Softmax', async () => {
  const size = 8;
  const plane = size * size;
  const image = new Float32Array(3 * plane);
  image.fill(0.9, plane, 2 * plane); // green channel only
  for (const softmax of [false, true]) {
    const s = await session(buildMeanClassifierModel({ size, softmax }));
    try {
      assert.deepEqual(tensorShape(s.outputMetadata[0]), [1, 3]);
      const out = await s.run({ images: new ort.Tensor('float32', image, [1, 3, size, size]) });
      const data = Array.from(out.output0!.data as Float32Array);
      if (softmax) {
        assert.ok(Math.abs(data.reduce((a, b) => a + b, 0) - 1) < 1e-5);
        assert.ok(data[1]! > data[0]! && data[1]! > data[2]!);
      } else {
        assert.deepEqual(data.map((v) => Number(v.toFixed(5))), [0, 0.9, 0]);
      }
    } finally {
      await s.release();
    }
  }
});

test('attributes of every kind and int64 initializers serialise into a loadable graph', async () => {
  // Reshape (int64 shape initializer) -> Transpose (ints) -> LeakyRelu (float) -> Flatten (int).
  const model = buildOnnxModel({
    inputs: [{ name: 'x', dims: [1, 6] }],
    outputs: [{ name: 'y', dims: [1, 6] }],
    initializers: [{ name: 'shape', dims: [3], int64s: [1, 2, 3] }],
    nodes: [
      { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['r'] },
      { op: 'Transpose', inputs: ['r'], outputs: ['t'], attributes: { perm: { ints: [0, 2, 1] } } },
      { op: 'LeakyRelu', inputs: ['t'], outputs: ['l'], attributes: { alpha: { f: 0.5 } } },
      { op: 'Flatten', inputs: ['l'], outputs: ['y'], attributes: { axis: { i: 1 } } },
    ],
    metadata: { note: "it's fine" },
  });
  const s = await session(model);
  try {
    const out = await s.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, -4, 5, 6]), [1, 6]) });
    // [[1,2,3],[-4,5,6]] transposed -> [[1,-4],[2,5],[3,6]] -> leaky relu halves -4.
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [1, -2, 2, 5, 3, 6]);
  } finally {
    await s.release();
  }
});

test('the builder rejects value counts that do not match the dims', () => {
  assert.throws(() => buildConstantOutputModel({ outputDims: [1, 4], values: [1, 2, 3] }), /3 float values/);
});
