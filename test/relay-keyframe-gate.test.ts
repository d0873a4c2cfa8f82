/**
 * Gated RTSP reading (IDLE_SLOW_CAMERA): one ffmpeg keeps the RTSP session and remuxes, a
 * second decodes what the keyframe gate lets through. A quiet camera (a rate the keyframes can
 * give) decodes keyframes only without reopening anything, and waking it releases the held
 * pictures to the same decoder: same processes throughout, frames at the full rate again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a gated camera goes to keyframes only and back without reopening its stream', async (t) => {
  if (!hasFfmpeg) return requireService(t, 'ffmpeg', 'not installed (apt-get install -y ffmpeg)');
  if (!rtsp) return t.skip('fixture video missing');
  const hub = new CameraHub({ ...loadRelayConfig({}), idleSlowCamera: true, keyframeOnlyFps: 0.5, watchdogMs: 8000, reconnectIntervalSec: 0.2, maxBackoffSec: 1 }, pino({ level: 'silent' }));
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
  } finally {
    await hub.stopAll();
  }
});

