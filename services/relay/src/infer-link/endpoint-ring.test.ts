import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointRing } from './endpoint-ring.js';

const replicas = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080'];

test('each model has one home replica, the same whatever the order endpoints come in', () => {
  const a = new EndpointRing(replicas);
  const b = new EndpointRing([...replicas].reverse());
  for (let m = 0; m < 50; m++) assert.equal(a.pick(`model-${m}`, () => 0), b.pick(`model-${m}`, () => 0));
  const homes = new Map<string, number>();
  for (let m = 0; m < 300; m++) {
    const e = a.pick(`model-${m}`, () => 0)!;
    homes.set(e, (homes.get(e) ?? 0) + 1);
  }
  for (const n of homes.values()) assert.ok(n > 60 && n < 140, `a fair share of homes: ${[...homes.values()]}`);
});

test('bounded loads: a busy home passes the model to the next replica, never above c x mean', () => {
  const ring = new EndpointRing(replicas);
  const load = new Map<string, number>(replicas.map((e) => [e, 0]));
  // One hot model sending 30 concurrent requests, each holding its slot.
  for (let i = 0; i < 30; i++) {
    const e = ring.pick('hot-model', (x) => load.get(x)!)!;
    load.set(e, load.get(e)! + 1);
    const mean = [...load.values()].reduce((a, b) => a + b, 0) / replicas.length;
    assert.ok(load.get(e)! <= Math.ceil(1.25 * mean) + 1, `load ${load.get(e)} vs mean ${mean}`);
  }
  const order = ring.order('hot-model');
  assert.ok(load.get(order[0]!)! >= load.get(order[2]!)!, 'the home takes the most, the last fallback the least');
});

test('a vanished or failing replica: its models move to the next on the ring; others stay', () => {
  const ring = new EndpointRing(replicas);
  const gone = ring.pick('model-7', () => 0)!;
  const moved = ring.pick('model-7', () => 0, { excluded: new Set([gone]) })!;
  assert.notEqual(moved, gone);
  assert.equal(moved, ring.order('model-7')[1]);
  const smaller = new EndpointRing(replicas.filter((e) => e !== gone));
  let stayed = 0;
  let total = 0;
  for (let m = 0; m < 200; m++) {
    const before = ring.pick(`model-${m}`, () => 0)!;
    if (before === gone) continue;
    total++;
    if (smaller.pick(`model-${m}`, () => 0) === before) stayed++;
  }
  assert.equal(stayed, total, 'models of the other replicas keep their home');
  assert.equal(new EndpointRing([]).pick('x', () => 0), undefined);
});

test('preferred replicas (already serving the model) come first among those under the bound', () => {
  const ring = new EndpointRing(replicas);
  const order = ring.order('model-x');
  const last = order[2]!;
  assert.equal(ring.pick('model-x', () => 0, { preferred: (e) => e === last }), last);
  // A preferred replica over the bound is passed over.
  const load = (e: string) => (e === last ? 10 : 0);
  assert.equal(ring.pick('model-x', load, { preferred: (e) => e === last }), order[0]);
});
