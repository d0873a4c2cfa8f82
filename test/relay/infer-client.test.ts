/** The relay's infer client states what it sends: a JPEG as image/jpeg, raw detect pixels as application/x-rgb24 with their size. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStubInfer, type StubInfer } from '@detector-worker/testkit/stub-infer';
import { InferClient, type InferRequest } from '@detector-worker/relay/infer-link/infer-client';

let stub: StubInfer;
before(async () => {
  stub = await startStubInfer();
});
after(async () => {
  await stub.close();
});

const base: InferRequest = { modelId: 'm', modelUrl: 'http://m/a.mpta', subscriptionIdentifier: 'd;c', displayId: 'd', sessionId: null, requestId: 'r', capturedAt: new Date(0).toISOString(), stage: 'detect' };

test('raw detect frames go as application/x-rgb24 with width and height; JPEGs as image/jpeg without them', async () => {
  const client = new InferClient(stub.url, undefined, 2000);
  try {
    assert.equal((await client.infer(Buffer.alloc(4 * 3 * 3), { ...base, raw: { width: 4, height: 3 } })).ok, true);
    const raw = stub.requests.at(-1)!;
    assert.equal(raw.contentType, 'application/x-rgb24');
    assert.deepEqual([raw.query.width, raw.query.height, raw.query.stage, raw.bytes], ['4', '3', 'detect', 36]);
    assert.equal((await client.infer(Buffer.from([0xff, 0xd8, 0xff, 0xd9]), { ...base, stage: 'full' })).ok, true);
    const jpeg = stub.requests.at(-1)!;
    assert.equal(jpeg.contentType, 'image/jpeg');
    assert.deepEqual([jpeg.query.width, jpeg.query.height], [undefined, undefined]);
  } finally {
    await client.close();
  }
});
