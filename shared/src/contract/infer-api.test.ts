import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTEXT_HEADERS, InferContextFields, checkInferAnswer, contextQuery, inferPath } from './infer-api.js';

const timings = { decode: 1, modelWait: 0, preprocess: 2, inference: 3, nodes: { det: { preprocess: 2, inference: 3 } }, actions: 0, total: 6 };
const answer = { modelId: '101', detection: { class: 'car', confidence: 0.9, carColor: 'gray', plate: null, parked: true }, result: { class: 'car' }, actions: [{ node: 'det', type: 'redis_publish', status: 'ok', durationMs: 1.2 }], timings };

test('contract: a full answer passes; a detection must be flat', () => {
  assert.equal(checkInferAnswer(answer).ok, true);
  assert.equal(checkInferAnswer({ ...answer, detection: null, result: null }).ok, true);
  for (const detection of [[1, 2], 'car', { bbox: [1, 2, 3, 4] }, { nested: { a: 1 } }]) {
    const r = checkInferAnswer({ ...answer, detection });
    assert.equal(r.ok, false, JSON.stringify(detection));
    assert.match((r as { reason: string }).reason, /detection/);
  }
  for (const bad of [[], null, 'x', { detection: { a: 1 } }, { ...answer, actions: [{ status: 'meh' }] }, { ...answer, timings: {} }]) assert.equal(checkInferAnswer(bad).ok, false);
});

test('contract: every context field has a header; the query carries only what is set', () => {
  assert.deepEqual(Object.keys(CONTEXT_HEADERS).sort(), Object.keys(InferContextFields).sort());
  for (const h of Object.values(CONTEXT_HEADERS)) assert.match(h, /^x-[a-z-]+$/);
  const q = contextQuery({ modelUrl: 'http://m/a.mpta', displayId: 'display-1', requestId: 'r;1' });
  assert.deepEqual(Object.fromEntries(q), { modelUrl: 'http://m/a.mpta', displayId: 'display-1', requestId: 'r;1' });
  assert.equal(inferPath('a b/c'), '/v1/models/a%20b%2Fc/infer');
});
