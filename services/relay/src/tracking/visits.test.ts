import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Box, Point } from './geometry.js';
import { Tracker } from './tracker.js';
import { DEFAULT_VISIT_CONFIG, VisitBook, frameQuality } from './visits.js';

const W = 640;
const H = 360;

function feed(book: VisitBook<number>, tracker: Tracker, boxes: Array<Array<[Box, number]>>, fps: number, start = 0) {
  return boxes.map((frame, i) => {
    const time = start + i / fps;
    const u = tracker.update(frame.map(([box, score]) => ({ box, score, className: 'car' })), time);
    const out = book.update(u, i, W, H, time);
    // As the frame group does: a due run is sent at once.
    for (const d of out.due) book.markRun(d.visit, time);
    return out;
  });
}

test('a confirmed car in the zone is one visit; its first run comes on a good frame', () => {
  const tracker = new Tracker();
  const book = new VisitBook<number>(DEFAULT_VISIT_CONFIG, tracker.config.lostTimeoutSec);
  const box: Box = [200, 100, 400, 250];
  const ups = feed(book, tracker, Array.from({ length: 10 }, () => [[box, 0.9]]), 2);
  const started = ups.flatMap((u) => u.started);
  assert.equal(started.length, 1);
  const due = ups.flatMap((u) => u.due);
  assert.equal(due.length, 1, 'one run due; not repeated while the frame does not get better');
  assert.equal(due[0]!.visit.runs, 1);
  const later = feed(book, tracker, Array.from({ length: 10 }, () => [[box, 0.9]]), 2, 5);
  assert.equal(later.flatMap((u) => u.due).length, 0);
});

test('a box cut by the frame edge waits for a better frame, at most maxWaitSec', () => {
  const tracker = new Tracker();
  const book = new VisitBook<number>(DEFAULT_VISIT_CONFIG, tracker.config.lostTimeoutSec);
  const edge: Box = [0, 100, 200, 250];
  const ups = feed(book, tracker, Array.from({ length: 8 }, () => [[edge, 0.9]]), 2);
  const dueAt = ups.findIndex((u) => u.due.length > 0);
  // Confirmed at frame 2 (1 s); the wait of 2 s runs out at frame 6.
  assert.equal(dueAt, 6);
});

test('a clearly better frame re-runs the visit, up to maxRuns', () => {
  const tracker = new Tracker();
  const book = new VisitBook<number>({ ...DEFAULT_VISIT_CONFIG, maxRuns: 2 }, tracker.config.lostTimeoutSec);
  const small: Box = [300, 150, 360, 200];
  const ups1 = feed(book, tracker, Array.from({ length: 4 }, () => [[small, 0.7]]), 2);
  assert.equal(ups1.flatMap((u) => u.due).length, 1);
  // The car comes closer: bigger boxes (drifting slowly so IoU keeps matching).
  const frames = Array.from({ length: 12 }, (_, i): Array<[Box, number]> => [[[300 - 4 * i, 150 - 3 * i, 360 + 4 * i, 200 + 3 * i], 0.9]]);
  const ups2 = feed(book, tracker, frames, 2, 2);
  const due = ups2.flatMap((u) => u.due);
  assert.equal(due.length, 1, 'one re-run on the closer car');
  const ups3 = feed(book, tracker, Array.from({ length: 8 }, (_, i): Array<[Box, number]> => [[[250 - 4 * i, 110 - 2 * i, 410 + 4 * i, 240 + 2 * i], 0.95]]), 2, 8);
  assert.equal(ups3.flatMap((u) => u.due).length, 0, 'maxRuns reached');
});

test('outside the zone: no visit; a car parked in it stays one visit; leaving ends it', () => {
  const zone: Point[] = [[0, 180], [320, 180], [320, 360], [0, 360]];
  const tracker = new Tracker();
  const book = new VisitBook<number>({ ...DEFAULT_VISIT_CONFIG, zone }, tracker.config.lostTimeoutSec);
  const passing: Box = [400, 50, 600, 150];
  const parked: Box = [50, 150, 250, 300]; // anchor (150, 300) inside
  const ups = feed(book, tracker, Array.from({ length: 600 }, (_, i): Array<[Box, number]> => (i < 20 ? [[passing, 0.9], [parked, 0.85]] : [[parked, 0.85]])), 2);
  assert.equal(ups.flatMap((u) => u.started).length, 1);
  assert.equal(ups.flatMap((u) => u.ended).length, 0);
  const gone = feed(book, tracker, Array.from({ length: 40 }, () => []), 2, 300);
  const ended = gone.flatMap((u) => u.ended);
  assert.equal(ended.length, 1);
  assert.equal(ended[0]!.reason, 'track lost');
});

test('frameQuality prefers big, confident, uncut boxes', () => {
  assert.ok(frameQuality([100, 100, 300, 300], 0.9, W, H) > frameQuality([100, 100, 150, 150], 0.9, W, H));
  assert.ok(frameQuality([100, 100, 300, 300], 0.9, W, H) > frameQuality([0, 100, 200, 300], 0.9, W, H));
  assert.ok(frameQuality([100, 100, 300, 300], 0.9, W, H) > frameQuality([100, 100, 300, 300], 0.5, W, H));
});

test('a car driving through the zone is no visit; one that drives in and stops is, a second after it stops', () => {
  const tracker = new Tracker();
  const book = new VisitBook<number>(DEFAULT_VISIT_CONFIG, tracker.config.lostTimeoutSec);
  // 100 px wide, 40 px per frame at 2 fps (overlapping enough to track), across the frame.
  const passing = Array.from({ length: 10 }, (_, i): Array<[Box, number]> => [[[20 + 40 * i, 50, 120 + 40 * i, 110], 0.9]]);
  const ups = feed(book, tracker, passing, 2);
  assert.equal(tracker.active.filter((t) => t.state === 'confirmed').length, 1, 'tracked and confirmed');
  assert.equal(ups.flatMap((u) => u.started).length, 0);
  // Drives in for 2 s, then stands: the visit starts 1 s (two frames) after the stop.
  const arriving = Array.from({ length: 12 }, (_, i): Array<[Box, number]> => [[[Math.min(i, 4) * 40, 200, 200 + Math.min(i, 4) * 40, 320], 0.9]]);
  const later = feed(book, tracker, arriving, 2, 10);
  const startedAt = later.findIndex((u) => u.started.length > 0);
  assert.equal(startedAt, 6);
  assert.equal(later.flatMap((u) => u.started).length, 1);
});
