import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStubInfer, type StubInfer } from '@detector-worker/testkit/stub-infer';
import { InferRouter } from '@detector-worker/relay/infer-link/infer-router';
import type { InferRequest } from '@detector-worker/relay/infer-link/infer-client';

let stubs: StubInfer[];
before(async () => {
  stubs = await Promise.all([startStubInfer(), startStubInfer(), startStubInfer()]);
});
after(async () => {
  await Promise.all(stubs.map((s) => s.close()));
});

const request = (modelId: string): InferRequest => ({ modelId, modelUrl: 'http://m/a.mpta', subscriptionIdentifier: 'd;c', displayId: 'd', sessionId: null, requestId: 'r', capturedAt: new Date(0).toISOString(), stage: 'detect' });
const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);

test('each model goes to one replica; a failing replica is skipped and its models move on', async () => {
  let now = 1_000_000;
  const list = stubs.map((s) => s.url);
  const router = new InferRouter(() => list, { token: undefined, timeoutMs: 2000, cooldownMs: 5000, now: () => now });
  try {
    const homes = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let m = 0; m < 10; m++) {
        const before = new Map(stubs.map((s) => [s.url, s.requests.length]));
        const outcome = await router.infer(jpeg, request(`model-${m}`));
        assert.equal(outcome.ok, true);
        const used = stubs.find((s) => s.requests.length > before.get(s.url)!)!.url;
        if (round === 0) homes.set(`model-${m}`, used);
        else assert.equal(used, homes.get(`model-${m}`), 'sequential requests of a model stay on its replica');
      }
    }
    assert.ok(new Set(homes.values()).size >= 2, 'ten models spread over the replicas');

    // One replica starts failing: its next request fails, then its models go to the next one.
    const broken = stubs.find((s) => s.url === homes.get('model-0'))!;
    broken.failWith = 500;
    assert.equal((await router.infer(jpeg, request('model-0'))).ok, false);
    const again = await router.infer(jpeg, request('model-0'));
    assert.equal(again.ok, true);
    assert.notEqual(router.route('model-0'), broken.url);
    broken.failWith = undefined;
    now += 6000;
    assert.equal(router.route('model-0'), broken.url, 'back home after the cooldown');

    // A replica that leaves the list is forgotten.
    list.splice(list.indexOf(broken.url), 1);
    assert.notEqual(router.route('model-0'), broken.url);
  } finally {
    await router.close();
  }
});

test('groups are the load: many groups of one model spill to one more replica, not to all', async () => {
  const list = stubs.map((s) => s.url);
  const router = new InferRouter(() => list, { token: undefined, timeoutMs: 2000 });
  try {
    const send = (model: string, sub: string) => router.infer(jpeg, { ...request(model), subscriptionIdentifier: sub });
    // Twelve groups of one model: the bound spills it past its home, but only as far as needed.
    for (let g = 0; g < 12; g++) await send('m-2', `d${g};cam`);
    const used = new Set(Array.from({ length: 12 }, (_, g) => router.route('m-2', `d${g};cam`)));
    assert.ok(used.size >= 2 && used.size <= 3, `replicas used: ${used.size}`);
  } finally {
    await router.close();
  }
});
