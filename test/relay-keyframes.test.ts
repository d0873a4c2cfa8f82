/**
 * The RTSP reader's decode economy against a real RTSP server (the fixture video re-encoded
 * with a keyframe every second): at a rate the keyframes can give, ffmpeg decodes keyframes
 * only; a faster need reopens it decoding every frame; keyframes that turn out too sparse
 * for the need make the reader leave keyframes-only decoding by itself. Gated reading
 * (IDLE_SLOW_CAMERA): one ffmpeg keeps the RTSP session and remuxes, a second decodes what the
 * keyframe gate lets through; a quiet camera decodes keyframes only without reopening anything,
 * and waking it releases the held pictures to the same decoder.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { pino } from 'pino';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { CameraHub } from '@detector-worker/relay/cameras/camera-hub';
import type { CameraSource, Frame } from '@detector-worker/relay/cameras/frame';
import type { RtspReader } from '@detector-worker/relay/cameras/rtsp-reader';
import { fixture, fixturesRequired, requireService } from '@detector-worker/testkit/fixtures';
import { startRtspServer, type RtspTestServer } from '@detector-worker/testkit/rtsp-server';

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
let rtsp: RtspTestServer | undefined;

before(async () => {
  if (!hasFfmpeg) {
    if (fixturesRequired()) throw new Error('ffmpeg is not installed (apt-get install -y ffmpeg)');
    return;
  }
  const video = fixture({ skip: () => undefined }, 'video/traffic_640x360.mp4');
  if (video) rtsp = await startRtspServer(video);
});

after(async () => {
  await rtsp?.stop();
});

/** The command line of the reader's ffmpeg child. */
function argsOf(reader: RtspReader): string {
  return execFileSync('ps', ['-o', 'args=', '-p', String(reader.pid)]).toString();
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** By default the ungated reader (IDLE_SLOW_CAMERA=false): one ffmpeg, reopened with or without -skip_frame; `gated`: the demuxer, the keyframe gate and the decoder. */
function hubWith(keyframeOnlyFps: number, gated = false, framePreviewWidth = 640): CameraHub {
  return new CameraHub({ ...loadRelayConfig({}), idleSlowCamera: gated, keyframeOnlyFps, framePreviewWidth, watchdogMs: 8000, reconnectIntervalSec: 0.2, maxBackoffSec: 1 }, pino({ level: 'silent' }));
}

/** Every frame came with its preview of `width` (FRAME_PREVIEW_WIDTH), of the same picture. */
function withPreviews(frames: readonly Frame[], width: number): boolean {
  return frames.every((f) => f.preview !== undefined && f.preview.width === width && f.preview.height === Math.round((width * f.height) / f.width / 2) * 2 && f.preview.rgb.length === f.preview.width * f.preview.height * 3);
}

test('keyframes only while they give the rate; a faster need reopens ffmpeg decoding every frame', async (t) => {
  if (!hasFfmpeg) return requireService(t, 'ffmpeg', 'not installed (apt-get install -y ffmpeg)');
  if (!rtsp) return t.skip('fixture video missing');
  const hub = hubWith(1);
  const source: CameraSource = { kind: 'rtsp', url: rtsp.url };
  try {
    const reader = hub.acquire(source, 'slow', 1) as RtspReader;
    const frames: Frame[] = [];
    reader.on('frame', (f) => frames.push(f));
    await until('three frames', () => frames.length >= 3);
    assert.equal(reader.keyframesOnly, true, 'one keyframe a second is enough for 1 fps');
    assert.match(argsOf(reader), /-skip_frame nokey/);
    assert.ok(frames.every((f) => f.jpeg[0] === 0xff && f.jpeg[1] === 0xd8 && f.jpeg.at(-1) === 0xd9), 'whole JPEGs');
    assert.ok(withPreviews(frames, 640), 'each frame with its preview');

    const firstPid = reader.pid;
    hub.acquire(source, 'fast', 2);
    assert.equal(hub.readers().length, 1, 'still one reader for the camera');
    await until('ffmpeg reopened', () => reader.pid !== undefined && reader.pid !== firstPid && reader.processRunning);
    assert.equal(reader.keyframesOnly, false);
    assert.doesNotMatch(argsOf(reader), /-skip_frame/);
    const seen = frames.length;
    await until('frames after the reopen', () => frames.length >= seen + 2);
  } finally {
    await hub.stopAll();
  }
});

test('keyframes too sparse for the need: the reader measures them and decodes every frame', async (t) => {
  if (!hasFfmpeg) return requireService(t, 'ffmpeg', 'not installed (apt-get install -y ffmpeg)');
  if (!rtsp) return t.skip('fixture video missing');
  // 2 fps may use keyframes only by configuration, but the camera sends one a second.
  // Without previews (FRAME_PREVIEW_WIDTH=0) frames come alone.
  const hub = hubWith(2, false, 0);
  try {
    const reader = hub.acquire({ kind: 'rtsp', url: rtsp.url }, 'user', 2) as RtspReader;
    let frames = 0;
    let previews = 0;
    reader.on('frame', (f) => {
      frames++;
      if (f.preview) previews++;
    });
    await until('the first frame', () => frames > 0);
    assert.match(argsOf(reader), /-skip_frame nokey/, 'starts on keyframes');
    await until('keyframes-only abandoned', () => !reader.keyframesOnly);
    await until('the new ffmpeg running', () => reader.processRunning);
    assert.doesNotMatch(argsOf(reader), /-skip_frame/);
    const seen = frames;
    await until('frames keep coming', () => frames >= seen + 2);
    assert.equal(reader.stats.reconnects, 0, 'a planned reopen, not a failure');
    assert.equal(previews, 0, 'no previews when they are off');
  } finally {
    await hub.stopAll();
  }
});

test('a gated camera goes to keyframes only and back without reopening its stream', async (t) => {
  if (!hasFfmpeg) return requireService(t, 'ffmpeg', 'not installed (apt-get install -y ffmpeg)');
  if (!rtsp) return t.skip('fixture video missing');
  // Previews smaller than the frame: the second output of the decoder scales.
  const hub = hubWith(0.5, true, 320);
  const source: CameraSource = { kind: 'rtsp', url: rtsp.url };
  try {
    const reader = hub.acquire(source, 'group', 2) as RtspReader;
    const frames: Frame[] = [];
    reader.on('frame', (f) => frames.push(f));
    await until('frames at the full rate', () => frames.length >= 4);
    const open = reader.gateState!;
    assert.equal(open.mode, 'all');
    assert.equal(open.skipped, 0);
    const pids = [reader.pid, open.demuxerPid];
    assert.ok(pids.every((p) => p !== undefined));

    // Quiet: the group asks for the idle rate; the gate closes to keyframes, nothing reopens.
    hub.acquire(source, 'group', 0.5);
    assert.equal(reader.gateState!.mode, 'keyframes');
    const before = frames.length;
    await until('packets held back', () => reader.gateState!.skipped > 200);
    await until('keyframes still decoded', () => frames.length >= before + 2);
    assert.deepEqual([reader.pid, reader.gateState!.demuxerPid], pids, 'the same ffmpeg pair');
    assert.ok(frames.slice(before).every((f) => f.jpeg[0] === 0xff && f.jpeg[1] === 0xd8), 'whole JPEGs');

    // Awake a little after a keyframe (some of its group held back): the gate opens, the held
    // pictures go to the same decoder, frames keep coming.
    const skipped = reader.gateState!.skipped;
    await until('pictures after the keyframe held back', () => reader.gateState!.skipped >= skipped + 20);
    const passed = reader.gateState!.passed;
    hub.acquire(source, 'group', 2);
    assert.equal(reader.gateState!.mode, 'all');
    assert.ok(reader.gateState!.passed > passed, 'the held group of pictures was released');
    const woke = frames.length;
    await until('frames again', () => frames.length >= woke + 4);
    assert.deepEqual([reader.pid, reader.gateState!.demuxerPid], pids, 'still the same ffmpeg pair');

    // Busy for longer than the keyframe pacing allows between keyframes, then quiet again: the
    // new quiet spell is judged on its own keyframes (an earlier spell's must not look sparse).
    await new Promise((r) => setTimeout(r, 6000));
    hub.acquire(source, 'group', 0.5);
    const again = frames.length;
    await until('keyframes in the second quiet spell', () => frames.length >= again + 3);
    assert.equal(reader.gateState!.mode, 'keyframes', 'still keyframes only');
    assert.deepEqual([reader.pid, reader.gateState!.demuxerPid], pids, 'never reopened');
    assert.equal(reader.stats.reconnects, 0);
    assert.ok(withPreviews(frames, 320), 'every frame, quiet or not, with its 320-wide preview');
  } finally {
    await hub.stopAll();
  }
});

