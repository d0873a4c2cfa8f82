import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Box } from './geometry.js';
import { DEFAULT_TRACKER_CONFIG, Tracker, mergeDuplicates, type TrackInput, type TrackerUpdate } from './tracker.js';

const car = (box: Box, score = 0.9, className = 'car'): TrackInput => ({ box, score, className });
const shift = (b: Box, dx: number, dy = 0): Box => [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy];

/** Runs frames at `fps`; returns every update. */
function run(tracker: Tracker, frames: TrackInput[][], fps: number, start = 0): TrackerUpdate[] {
  return frames.map((dets, i) => tracker.update(dets, start + i / fps));
}

const confirmedIds = (u: TrackerUpdate): number[] => u.tracks.filter((t) => t.state === 'confirmed').map((t) => t.id).sort();

test('a steady car is tentative first, then confirmed after enough hits and time', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  const ups = run(tracker, Array.from({ length: 4 }, () => [car(box)]), 2);
  assert.equal(ups[0]!.tracks[0]!.state, 'tentative');
  assert.equal(ups[1]!.tracks[0]!.state, 'tentative', 'two hits 0.5 s apart are not yet a second of evidence');
  assert.equal(ups[2]!.confirmed.length, 1, 'confirmed at 1 s');
  assert.equal(ups[3]!.tracks[0]!.state, 'confirmed');
  assert.equal(new Set(ups.flatMap((u) => u.tracks.map((t) => t.id))).size, 1, 'one id throughout');
});

test('two cars crossing keep their ids (prediction follows each one)', () => {
  const tracker = new Tracker();
  const frames: TrackInput[][] = [];
  for (let i = 0; i < 20; i++) {
    // A drives right, B drives left on a slightly lower lane; they overlap mid-clip.
    const a: Box = [50 + 20 * i, 100, 170 + 20 * i, 180];
    const b: Box = [450 - 20 * i, 140, 570 - 20 * i, 220];
    frames.push([car(a), car(b)]);
  }
  const ups = run(tracker, frames, 10);
  const last = ups.at(-1)!;
  assert.equal(last.tracks.length, 2);
  const right = last.tracks.find((t) => t.box[0] > 300)!;
  const left = last.tracks.find((t) => t.box[0] < 300)!;
  // A started on the left (id 1) and ends on the right.
  assert.equal(right.id, 1);
  assert.equal(left.id, 2);
});

test('an occlusion shorter than the lost timeout keeps the track (and its visit)', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  const seen = Array.from({ length: 6 }, () => [car(box)]);
  const hidden = Array.from({ length: 16 }, () => [] as TrackInput[]); // 8 s at 2 fps
  const ups = run(tracker, [...seen, ...hidden, ...seen], 2);
  const id = ups[5]!.tracks[0]!.id;
  assert.equal(ups[10]!.tracks[0]!.state, 'lost');
  assert.equal(ups.at(-1)!.tracks.length, 1);
  assert.equal(ups.at(-1)!.tracks[0]!.id, id);
  assert.equal(ups.at(-1)!.tracks[0]!.state, 'confirmed');
  assert.equal(ups.flatMap((u) => u.removed).length, 0);
});

test('a low-score box keeps a half-hidden car alive; alone it starts nothing', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  run(tracker, Array.from({ length: 4 }, () => [car(box)]), 2);
  const u = tracker.update([car(shift(box, 4), 0.2)], 2.5);
  assert.equal(u.tracks[0]!.state, 'confirmed');
  assert.equal(u.tracks[0]!.matched, true);
  const fresh = new Tracker();
  assert.equal(fresh.update([car(box, 0.3)], 0).tracks.length, 0);
});

test('car/truck flip and per-class duplicates are one track; the class is the strongest vote', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  const frames: TrackInput[][] = [];
  for (let i = 0; i < 10; i++) {
    // Per-class NMS kept both boxes of one van; which one wins flips.
    frames.push([car(box, i % 3 === 0 ? 0.7 : 0.8, 'car'), car(shift(box, 3), i % 3 === 0 ? 0.75 : 0.5, 'truck')]);
  }
  const ups = run(tracker, frames, 2);
  const ids = new Set(ups.flatMap((u) => u.tracks.map((t) => t.id)));
  assert.equal(ids.size, 1);
  assert.equal(ups.at(-1)!.tracks[0]!.className, 'car');
  assert.equal(mergeDuplicates([car(box, 0.8), car(shift(box, 3), 0.6, 'truck')], 0.7).length, 1);
});

test('a car parked for ten minutes is one track; it ends only after it leaves', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  // Snapshot camera, one frame every 2 s; detector jitter of a few pixels, a missed frame now and then.
  const frames: TrackInput[][] = [];
  for (let i = 0; i < 300; i++) frames.push(i % 17 === 5 ? [] : [car(shift(box, (i % 3) - 1, (i % 2) * 2), 0.8 + (i % 5) * 0.02)]);
  const ups = run(tracker, frames, 0.5);
  assert.equal(new Set(ups.flatMap((u) => u.tracks.map((t) => t.id))).size, 1);
  assert.equal(ups.flatMap((u) => u.removed).length, 0);
  const after = run(tracker, Array.from({ length: 10 }, () => []), 0.5, 600);
  assert.equal(after.flatMap((u) => u.removed).length, 1, 'removed once the lost timeout passed');
});

test('a new car stopping where the last one stood gets a new id', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  const first = run(tracker, Array.from({ length: 6 }, () => [car(box)]), 2);
  const gap = run(tracker, Array.from({ length: 40 }, () => []), 2, 3); // 20 s empty
  assert.equal(gap.flatMap((u) => u.removed).length, 1);
  const second = run(tracker, Array.from({ length: 6 }, () => [car(shift(box, 6))]), 2, 23);
  assert.notEqual(second.at(-1)!.tracks[0]!.id, first.at(-1)!.tracks[0]!.id);
  assert.equal(confirmedIds(second.at(-1)!).length, 1);
});

test('low frame rate: a snapshot every 5 s confirms on the second frame and tolerates one miss', () => {
  const tracker = new Tracker();
  const box: Box = [100, 100, 300, 220];
  const ups = run(tracker, [[car(box)], [car(shift(box, 5))], [], [car(shift(box, 8))], [car(shift(box, 8))]], 0.2);
  assert.equal(ups[1]!.confirmed.length, 1);
  assert.equal(ups[2]!.tracks[0]!.state, 'lost');
  assert.equal(ups[3]!.tracks[0]!.state, 'confirmed');
  assert.equal(new Set(ups.flatMap((u) => u.tracks.map((t) => t.id))).size, 1);
});

test('a one-frame flicker never becomes a track; garbage boxes are ignored', () => {
  const tracker = new Tracker();
  const ups = run(tracker, [[car([10, 10, 50, 50])], [], [], [car([Number.NaN, 0, 1, 1]), car([5, 5, 5, 9]), car([9, 9, 2, 2])]], 2);
  assert.equal(ups.flatMap((u) => u.confirmed).length, 0);
  assert.equal(ups.at(-1)!.tracks.length, 0);
  assert.equal(DEFAULT_TRACKER_CONFIG.lostTimeoutSec > 10, true);
});
