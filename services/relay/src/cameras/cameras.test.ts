import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JpegSplitter } from './jpeg-splitter.js';
import { NOT_IN_TS, decodeKeyframesOnly, ffmpegArgs, gatedFfmpegArgs, sparseKeyframeInterval } from './rtsp-reader.js';

const jpeg = (n: number) => Buffer.from([0xff, 0xd8, n, 0xff, 0x00, n, 0xff, 0xd9]);

test('JPEG splitter: whole images from arbitrary chunking, garbage skipped', () => {
  const stream = Buffer.concat([Buffer.from('junk'), jpeg(1), jpeg(2), jpeg(3)]);
  for (const size of [1, 2, 3, 5, 7, 100]) {
    const s = new JpegSplitter();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) out.push(...s.push(stream.subarray(i, i + size)));
    assert.deepEqual(out, [jpeg(1), jpeg(2), jpeg(3)], `chunk ${size}`);
  }
  // A frame larger than a pipe chunk, in 64 KiB pieces: returned whole, once.
  const big = Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(300_000, 0x11), Buffer.from([0xff, 0xd9])]);
  const pieces = new JpegSplitter();
  const got: Buffer[] = [];
  for (let i = 0; i < big.length; i += 65_536) got.push(...pieces.push(big.subarray(i, i + 65_536)));
  assert.equal(got.length, 1);
  assert.ok(got[0]!.equals(big));
  const bounded = new JpegSplitter(16);
  bounded.push(Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(64)]));
  assert.deepEqual(bounded.push(jpeg(4)), [jpeg(4)], 'an oversized unfinished frame is dropped');
});

test('ffmpeg decodes keyframes only when the needed rate allows, TCP transport, one frame per 1/rate slot', () => {
  const slow = ffmpegArgs('rtsp://cam/1', 0.2, { keyframeOnlyFps: 0.5, jpegQuality: 85 });
  assert.ok(slow.includes('-skip_frame') && slow[slow.indexOf('-skip_frame') + 1] === 'nokey');
  assert.equal(slow[slow.indexOf('-rtsp_transport') + 1], 'tcp');
  assert.ok(slow.includes('vfr'));
  assert.ok(slow.indexOf('-skip_frame') < slow.indexOf('-i'), 'an input option');
  const fast = ffmpegArgs('rtsp://cam/1', 2, { keyframeOnlyFps: 0.5, jpegQuality: 85 });
  assert.ok(!fast.includes('-skip_frame'));
  assert.match(fast[fast.indexOf('-vf') + 1]!, /floor\(t\*2\.000000\)/);
  assert.equal(fast[fast.indexOf('-huffman') + 1], 'default', 'one encoding pass per frame');
  // Decoding and encoding each on one thread: a frame-threaded MJPEG encoder holds each JPEG back until the next frame.
  const threads = fast.flatMap((a, i) => (a === '-threads' ? [i] : []));
  assert.deepEqual(threads.map((i) => fast[i + 1]), ['1', '1']);
  assert.ok(threads[0]! < fast.indexOf('-i') && threads[1]! > fast.indexOf('-i'), 'one for the decoder (input), one for the encoder (output)');
  const gated = gatedFfmpegArgs('rtsp://cam/1', 2, { keyframeOnlyFps: 0.5, jpegQuality: 85 }).decoder;
  assert.ok(gated.lastIndexOf('-threads') > gated.indexOf('-i'), 'the gated decoder encodes on one thread too');
  const measured = ffmpegArgs('rtsp://cam/1', 0.5, { keyframeOnlyFps: 0.5, jpegQuality: 85, keyframeIntervalMs: 4000 });
  assert.ok(!measured.includes('-skip_frame'), 'keyframes known to be 4 s apart cannot give 0.5 fps');
});

test('keyframes-only decoding: chosen by rate, left when the keyframes prove too sparse', () => {
  assert.equal(decodeKeyframesOnly(0.5, 0.5), true);
  assert.equal(decodeKeyframesOnly(1, 0.5), false);
  assert.equal(decodeKeyframesOnly(0.5, 0.5, 2000), true);
  assert.equal(decodeKeyframesOnly(0.1, 0.5, 4000), true, 'sparse for 0.5 fps, enough for 0.1 fps');
  assert.equal(decodeKeyframesOnly(0.5, 0.5, 4000), false);
  // Keyframes every ~2 s for a 0.5 fps need: fine.
  assert.equal(sparseKeyframeInterval([0, 1980, 3960, 5940], 6000, 0.5), undefined);
  assert.equal(sparseKeyframeInterval([0, 2000], 3000, 0.5), undefined, 'too few frames to judge');
  // Every 4 s: too sparse, from the mean of four deliveries.
  assert.equal(sparseKeyframeInterval([0, 4000, 8000, 12000], 12000, 0.5), 4000);
  // One keyframe and then silence far past the slot: at least that sparse.
  assert.equal(sparseKeyframeInterval([0], 6000, 0.5), 6000);
  assert.equal(sparseKeyframeInterval([], 60_000, 0.5), undefined, 'no frame at all is for the watchdog');
});

test('a codec MPEG-TS cannot carry (MJPEG over RTSP) is recognised from what the gated pair says, so the camera falls back to one ffmpeg', () => {
  // Debian ffmpeg 5.1, remuxing an MJPEG stream to MPEG-TS and decoding that from the pipe.
  assert.match('[mpegts @ 0x5630922d3b00] Stream 0, codec mjpeg, is muxed as a private data stream and may not be recognized upon reading.', NOT_IN_TS);
  assert.match('Output file #0 does not contain any stream', NOT_IN_TS);
  assert.doesNotMatch('[h264 @ 0x55f0] non-existing PPS 0 referenced', NOT_IN_TS);
});
