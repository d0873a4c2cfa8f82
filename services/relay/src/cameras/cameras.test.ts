import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, mayRetry } from './backoff.js';
import { JpegSplitter } from './jpeg-splitter.js';
import { ffmpegArgs } from './rtsp-reader.js';

const jpeg = (n: number) => Buffer.from([0xff, 0xd8, n, 0xff, 0x00, n, 0xff, 0xd9]);

test('JPEG splitter: whole images from arbitrary chunking, garbage skipped', () => {
  const stream = Buffer.concat([Buffer.from('junk'), jpeg(1), jpeg(2), jpeg(3)]);
  for (const size of [1, 2, 3, 5, 7, 100]) {
    const s = new JpegSplitter();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) out.push(...s.push(stream.subarray(i, i + size)));
    assert.deepEqual(out, [jpeg(1), jpeg(2), jpeg(3)], `chunk ${size}`);
  }
  const bounded = new JpegSplitter(16);
  bounded.push(Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(64)]));
  assert.deepEqual(bounded.push(jpeg(4)), [jpeg(4)], 'an oversized unfinished frame is dropped');
});

test('backoff doubles from the interval and is capped; max_retries -1 is forever', () => {
  assert.deepEqual([0, 1, 2, 3, 10].map((f) => backoffDelayMs(f, 5, 60)), [5000, 10000, 20000, 40000, 60000]);
  assert.equal(mayRetry(1000, -1), true);
  assert.equal(mayRetry(3, 3), true);
  assert.equal(mayRetry(4, 3), false);
});

test('ffmpeg decodes keyframes only when the needed rate allows, TCP transport, no duplicated frames', () => {
  const slow = ffmpegArgs('rtsp://cam/1', 0.2, { keyframeOnlyFps: 0.5, jpegQuality: 85 });
  assert.ok(slow.includes('-skip_frame') && slow[slow.indexOf('-skip_frame') + 1] === 'nokey');
  assert.equal(slow[slow.indexOf('-rtsp_transport') + 1], 'tcp');
  assert.ok(slow.includes('vfr'));
  const fast = ffmpegArgs('rtsp://cam/1', 2, { keyframeOnlyFps: 0.5, jpegQuality: 85 });
  assert.ok(!fast.includes('-skip_frame'));
  assert.match(fast[fast.indexOf('-vf') + 1]!, /0\.5000/);
});
