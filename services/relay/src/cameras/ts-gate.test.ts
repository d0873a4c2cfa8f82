import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TsGate } from './ts-gate.js';

/** A 188-byte TS packet: `tag` marks it in the payload so tests can follow it through the gate. */
function packet(pid: number, opts: { start?: boolean; key?: boolean; table?: boolean; tag: number }): Buffer {
  const p = Buffer.alloc(188, 0xff);
  p[0] = 0x47;
  p[1] = (opts.start ? 0x40 : 0) | ((pid >> 8) & 0x1f);
  p[2] = pid & 0xff;
  let at = 4;
  if (opts.key !== undefined && opts.start) {
    p[3] = 0x30; // adaptation field and payload
    p[4] = 1; // adaptation field length
    p[5] = opts.key ? 0x40 : 0; // random_access_indicator
    at = 6;
  } else p[3] = 0x10; // payload only
  if (opts.start && !opts.table) p.set([0, 0, 1, 0xe0], at); // a PES header
  if (opts.start && opts.table) p.set([0, 0, 0xb0], at); // pointer field, table id, section flags
  p[at + 8] = opts.tag;
  return p;
}
const tagOf = (p: Buffer) => p[(p[3]! & 0x20 ? 6 : 4) + 8]!;
const VIDEO = 0x100;
const stream = (): Buffer[] => [
  packet(0, { start: true, table: true, tag: 1 }),
  packet(VIDEO, { start: true, key: true, tag: 2 }),
  packet(VIDEO, { tag: 3 }),
  packet(VIDEO, { start: true, key: false, tag: 4 }),
  packet(VIDEO, { tag: 5 }),
  packet(0, { start: true, table: true, tag: 6 }),
  packet(VIDEO, { start: true, key: false, tag: 7 }),
];
/** The tags and continuity counters of what passed. */
function passedOf(out: Buffer[]): Array<[number, number]> {
  const all = Buffer.concat(out);
  const got: Array<[number, number]> = [];
  for (let i = 0; i < all.length; i += 188) got.push([tagOf(all.subarray(i, i + 188)), all[i + 3]! & 0x0f]);
  return got;
}

test('TS gate: everything passes while open, in any chunking, with continuity counters per PID', () => {
  const bytes = Buffer.concat(stream());
  for (const size of [1, 7, 188, 200, 1000]) {
    const gate = new TsGate();
    const out: Buffer[] = [];
    const copy = Buffer.from(bytes);
    for (let i = 0; i < copy.length; i += size) out.push(...gate.push(copy.subarray(i, i + size)).out);
    assert.deepEqual(passedOf(out), [[1, 0], [2, 0], [3, 1], [4, 2], [5, 3], [6, 1], [7, 4]], `chunk ${size}`);
  }
});

test('TS gate: keyframes only passes each keyframe and the two PES that push it through, holds the rest and releases it on waking', () => {
  const gate = new TsGate();
  gate.setMode('keyframes');
  const frames = [packet(0, { start: true, table: true, tag: 1 }), packet(VIDEO, { start: true, key: true, tag: 2 }), packet(VIDEO, { tag: 3 }), ...[4, 5, 6, 7].map((tag) => packet(VIDEO, { start: true, key: false, tag }))];
  const quiet = gate.push(Buffer.concat(frames)).out;
  assert.deepEqual(passedOf(quiet).map(([t]) => t), [1, 2, 3, 4, 5], 'tables, the keyframe PES and the two after it');
  assert.equal(gate.skipped, 2);
  const woke = gate.setMode('all');
  assert.deepEqual(passedOf(woke), [[6, 4], [7, 5]], 'the held pictures, in order, counters continuing');
  // A new keyframe starts a new group: what was held before it is dropped, not released.
  gate.setMode('keyframes');
  const more = gate.push(Buffer.concat([8, 9, 10, 11, 12].map((tag) => packet(VIDEO, { start: true, key: tag === 9, tag })))).out;
  assert.deepEqual(passedOf(more).map(([t]) => t), [9, 10, 11]);
  assert.deepEqual(passedOf(gate.setMode('all')).map(([t]) => t), [12]);
});

test('TS gate: held pictures come back whole and in order whatever the chunking (held as runs of the chunks)', () => {
  const frames = [packet(VIDEO, { start: true, key: true, tag: 1 }), packet(VIDEO, { tag: 2 }), ...[3, 4, 5, 6, 7, 8].map((tag) => packet(VIDEO, { start: true, key: false, tag })), packet(VIDEO, { tag: 9 })];
  const bytes = Buffer.concat(frames);
  for (const size of [1, 7, 188, 200, 376, 1000]) {
    const gate = new TsGate();
    gate.setMode('keyframes');
    const out: Buffer[] = [];
    const copy = Buffer.from(bytes);
    for (let i = 0; i < copy.length; i += size) out.push(...gate.push(copy.subarray(i, i + size)).out);
    out.push(...gate.setMode('all'));
    assert.deepEqual(passedOf(out), [[1, 0], [2, 1], [3, 2], [4, 3], [5, 4], [6, 5], [7, 6], [8, 7], [9, 8]], `chunk ${size}`);
  }
});

test('TS gate: past its cap it waits for the next keyframe instead of feeding a broken group', () => {
  const gate = new TsGate(2 * 188);
  gate.setMode('keyframes');
  gate.push(Buffer.concat([packet(VIDEO, { start: true, key: true, tag: 1 }), ...[2, 3, 4, 5, 6].map((tag) => packet(VIDEO, { start: true, key: false, tag }))]));
  assert.deepEqual(gate.setMode('all'), [], 'nothing to catch up with');
  const out = gate.push(Buffer.concat([packet(VIDEO, { start: true, key: false, tag: 7 }), packet(VIDEO, { start: true, key: true, tag: 8 }), packet(VIDEO, { start: true, key: false, tag: 9 })])).out;
  assert.deepEqual(passedOf(out).map(([t]) => t), [8, 9], 'deltas before the next keyframe are dropped');
});

test('TS gate: a stream that loses sync is refused', () => {
  const gate = new TsGate();
  const bad = Buffer.concat([packet(0, { start: true, table: true, tag: 1 }), Buffer.alloc(188, 0)]);
  const r = gate.push(bad);
  assert.equal(passedOf(r.out).length, 1);
  assert.match(r.error!, /lost MPEG-TS sync/);
});
