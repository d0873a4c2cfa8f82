import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Box } from './geometry.js';
import { GroupVisits, readsOf, trackingSettings, zoneInPixels } from './group-visits.js';

const W = 640;
const H = 360;

function settle(g: GroupVisits<number>, box: Box, seconds: number, start = 0, fps = 2) {
  const outs = [];
  for (let i = 0; i < seconds * fps; i++) outs.push(g.onDetections([{ box, score: 0.9, className: 'car' }], i, W, H, start + i / fps));
  return outs;
}

test('one visit: one due run, its answer is the one event; later equal answers send nothing', () => {
  const { tracker, visits } = trackingSettings(undefined, W, H);
  const g = new GroupVisits<number>(tracker, visits);
  const outs = settle(g, [200, 100, 400, 250], 5);
  const started = outs.flatMap((o) => o.started);
  const due = outs.flatMap((o) => o.due);
  assert.equal(started.length, 1);
  assert.equal(due.length, 1);
  assert.match(due[0]!.visitId, /^v-[0-9a-f]{8}-1$/);
  const first = g.onFullRun(due[0]!.visitId, { class: 'car', confidence: 0.9, carColor: 'gray', carColorConfidence: 0.7 });
  assert.equal(first.kind, 'event');
  assert.equal(g.onFullRun(due[0]!.visitId, { class: 'car', confidence: 0.9, carColor: 'gray', carColorConfidence: 0.8 }).kind, 'none');
});

test('a later run that flips the fused colour becomes a patch of the changed fields only', () => {
  const { tracker, visits } = trackingSettings(undefined, W, H);
  const g = new GroupVisits<number>(tracker, visits);
  const due = settle(g, [200, 100, 400, 250], 5).flatMap((o) => o.due)[0]!;
  g.onFullRun(due.visitId, { class: 'car', confidence: 0.9, carColor: 'brown', carColorConfidence: 0.4, bodyType: 'sedan', bodyTypeConfidence: 0.9 });
  const r = g.onFullRun(due.visitId, { class: 'car', confidence: 0.9, carColor: 'gray', carColorConfidence: 0.8, bodyType: 'sedan', bodyTypeConfidence: 0.9 });
  assert.deepEqual(r, { kind: 'patch', changed: { carColor: 'gray', carColorConfidence: 0.8 } });
});

test('a run that finds nothing sends nothing; answers after the visit ended are dropped', () => {
  const { tracker, visits } = trackingSettings({ lostTimeoutSec: 2 }, W, H);
  const g = new GroupVisits<number>(tracker, visits);
  const due = settle(g, [200, 100, 400, 250], 5).flatMap((o) => o.due)[0]!;
  assert.equal(g.onFullRun(due.visitId, null).kind, 'none');
  const gone = settle(g, [0, 0, 1, 1], 0).concat(Array.from({ length: 8 }, (_, i) => g.onDetections([], 0, W, H, 6 + i)));
  const ended = gone.flatMap((o) => o.ended);
  assert.equal(ended.length, 1);
  assert.equal(g.onFullRun(due.visitId, { class: 'car', confidence: 1 }).kind, 'none', 'its run was answered before it ended');
});

test('a visit that ends while its first run is out still gets its one event from that run', () => {
  const { tracker, visits } = trackingSettings({ lostTimeoutSec: 2 }, W, H);
  const g = new GroupVisits<number>(tracker, visits);
  const due = settle(g, [200, 100, 400, 250], 5).flatMap((o) => o.due)[0]!;
  const ended = Array.from({ length: 8 }, (_, i) => g.onDetections([], 0, W, H, 6 + i)).flatMap((o) => o.ended);
  assert.equal(ended.length, 1);
  const r = g.onFullRun(due.visitId, { class: 'car', confidence: 0.9 });
  assert.equal(r.kind, 'event');
  assert.equal(g.onFullRun(due.visitId, { class: 'car', confidence: 0.9 }).kind, 'none');
});

test('settings: pipeline values over defaults, normalised zones scaled, enabled false honoured', () => {
  const s = trackingSettings({ enabled: false, confirmHits: 3, lostTimeoutSec: 30, maxRuns: 1, zone: [[0, 0.5], [0.5, 0.5], [0.5, 1], [0, 1]] }, W, H);
  assert.equal(s.enabled, false);
  assert.equal(s.tracker.confirmHits, 3);
  assert.equal(s.tracker.lostTimeoutSec, 30);
  assert.equal(s.visits.maxRuns, 1);
  assert.deepEqual(s.visits.zone, [[0, 180], [320, 180], [320, 360], [0, 360]]);
  assert.deepEqual(zoneInPixels([[10, 10], [300, 10], [300, 200]], W, H), [[10, 10], [300, 10], [300, 200]]);
});

test('readsOf: string fields with their confidence, or the detection confidence', () => {
  assert.deepEqual(readsOf({ class: 'car', confidence: 0.8, carBrand: 'Honda', carBrandConfidence: 0.95, plate: null, parked: true }), {
    class: { value: 'car', confidence: 0.8 },
    carBrand: { value: 'Honda', confidence: 0.95 },
  });
});

test('plates: reads are fused across runs (one bad read does not decide); a changed plate is a patch', () => {
  const { tracker, visits } = trackingSettings({ maxRuns: 5 }, W, H);
  const g = new GroupVisits<number>(tracker, visits);
  const due = settle(g, [200, 100, 400, 250], 5).flatMap((o) => o.due)[0]!;
  const run = (text: string, c: number) => g.onFullRun(due.visitId, { class: 'car', confidence: 0.9, licensePlateText: text, licensePlateConfidence: c }, true);
  const first = run('DR6865I', 0.6);
  assert.equal(first.kind, 'event');
  assert.equal((first as { detection: Record<string, unknown> }).detection.licensePlateText, 'DR6865I');
  const second = run('DR68651', 0.95);
  const third = run('DR68651', 0.97);
  const patches = [second, third].filter((r) => r.kind === 'patch');
  assert.equal(patches.length, 1, JSON.stringify([second, third]));
  const changed = (patches[0] as { changed: Record<string, unknown> }).changed;
  assert.equal(changed.licensePlateText, 'DR68651');
  assert.equal(typeof changed.licensePlateConfidence, 'number');
  assert.equal(Object.keys(changed).length, 2, 'only the plate changed');
});

test('a visit whose runs read no plate yet runs again on any better frame', () => {
  const { tracker, visits } = trackingSettings({ maxRuns: 3 }, W, H);
  const g = new GroupVisits<number>(tracker, visits);
  const small: [number, number, number, number] = [300, 150, 360, 200];
  const due = settle(g, small, 3).flatMap((o) => o.due)[0]!;
  assert.equal(g.onFullRun(due.visitId, { class: 'car', confidence: 0.9 }, true).kind, 'event');
  // Slightly bigger (not 1.25x better) frames, seconds later: due again because no plate was read.
  const later = Array.from({ length: 8 }, (_, i) => g.onDetections([{ box: [298 - i, 149 - i, 362 + i, 201 + i], score: 0.9, className: 'car' }], i, W, H, 4 + i * 0.5));
  assert.ok(later.flatMap((o) => o.due).length >= 1);
});
