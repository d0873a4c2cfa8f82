import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@detector-worker/shared/logging';
import { CameraReader, type FailureKind, type ReaderState } from './camera-reader.js';
import { ffmpegArgs, ffmpegFailureKind } from './rtsp-reader.js';

const quiet = createLogger('test', { level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A reader driven by the test: it opens instantly; the test delivers frames or ends it. */
class ScriptedReader extends CameraReader {
  opens = 0;
  protected override readonly detectsRepeats: boolean = false;
  protected open(): void {
    this.opens++;
  }
  protected close(): void {}
  frame(): void {
    this.deliver(Buffer.from([this.opens]), { width: 1, height: 1 });
  }
  fail(kind: FailureKind = 'connect'): void {
    this.ended(`scripted ${kind}`, kind);
  }
}

const reader = (healthyAfterMs: number) =>
  new ScriptedReader({ kind: 'snapshot', url: 'http://camera/x.jpg' }, { reconnectIntervalSec: 0.01, maxBackoffSec: 10, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 5, healthyAfterMs }, quiet, 50);

test('a camera that answers once and dies keeps backing off; one healthy for long retries at the base interval', async () => {
  const r = reader(300);
  r.start();
  try {
    r.fail();
    assert.equal(r.stats.retryInMs, 10);
    await sleep(30);
    r.frame(); // one frame, then dead again: not forgiven
    assert.equal(r.stats.online, true);
    r.fail();
    assert.equal(r.stats.consecutiveFailures, 2);
    assert.equal(r.stats.retryInMs, 20);
    assert.equal(r.stats.online, false);
    await sleep(40);
    r.frame();
    r.fail();
    assert.equal(r.stats.retryInMs, 40, 'still growing');
    await sleep(60);
    // Frames for longer than healthyAfterMs: the count is forgiven while frames flow.
    r.frame();
    for (let i = 0; i < 8; i++) {
      await sleep(50);
      r.frame();
    }
    assert.equal(r.stats.consecutiveFailures, 0);
    r.fail('exited');
    assert.equal(r.stats.retryInMs, 10, 'first retry after a healthy period is at the base interval');
    assert.deepEqual(r.stats.failures, { connect: 3, exited: 1 });
    assert.equal(r.framesPerSecond(), 0, 'the rate restarts with the stream');
  } finally {
    await r.stop();
  }
});

test('framesPerSecond is the reader\'s own measure', async () => {
  const r = reader(10_000);
  r.start();
  try {
    for (let i = 0; i < 6; i++) {
      r.frame();
      await sleep(100);
    }
    const fps = r.framesPerSecond();
    assert.ok(fps > 5 && fps < 12, String(fps));
  } finally {
    await r.stop();
  }
});

test('ffmpeg: short probe unless a camera needed the full one; exit reasons classified', () => {
  const quick = ffmpegArgs('rtsp://cam/live', 2, { keyframeOnlyFps: 0.5, jpegQuality: 85 });
  assert.equal(quick[quick.indexOf('-analyzeduration') + 1], '500000');
  assert.ok(quick.indexOf('-analyzeduration') < quick.indexOf('-i'), 'an input option');
  assert.ok(!ffmpegArgs('rtsp://cam/live', 2, { keyframeOnlyFps: 0.5, jpegQuality: 85, fullProbe: true }).includes('-analyzeduration'));
  assert.equal(ffmpegFailureKind(1, 'rtsp://cam/live: Connection refused'), 'connect');
  assert.equal(ffmpegFailureKind(1, 'rtsp://cam/live: Connection timed out'), 'timeout');
  assert.equal(ffmpegFailureKind(1, 'method DESCRIBE failed: 404 Not Found'), 'http_status');
  assert.equal(ffmpegFailureKind(0, ''), 'exited');
});

test('a camera that refused connections is reopened soon after its port answers, not after the whole backoff', async () => {
  const { createServer } = await import('node:net');
  const { probeTarget } = await import('./reachability.js');
  assert.deepEqual(probeTarget('rtsp://user:pw@cam.local/live'), { host: 'cam.local', port: 554 });
  assert.deepEqual(probeTarget('http://127.0.0.1:8080/x.jpg'), { host: '127.0.0.1', port: 8080 });
  assert.equal(probeTarget('not a url'), undefined);
  // A port that is closed now and opened later.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const r = new ScriptedReader({ kind: 'snapshot', url: `http://127.0.0.1:${port}/x.jpg` }, { reconnectIntervalSec: 0.05, maxBackoffSec: 30, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 5 }, quiet, 5);
  r.start();
  const camera = createServer((s) => s.destroy());
  try {
    // Six refused connections in a row: each ends a connection attempt, so wait for it.
    for (let i = 0; i < 6; i++) {
      for (let j = 0; j < 200 && r.state !== 'connecting'; j++) await sleep(10);
      r.fail('connect');
    }
    assert.equal(r.stats.retryInMs, 1600);
    const opensBefore = r.opens;
    await sleep(200);
    assert.equal(r.opens, opensBefore, 'no reconnect while the port is closed');
    await new Promise<void>((res) => camera.listen(port, '127.0.0.1', res));
    const since = Date.now();
    for (let i = 0; i < 40 && r.opens === opensBefore; i++) await sleep(25);
    assert.equal(r.opens, opensBefore + 1, 'reopened once the port answered');
    assert.ok(Date.now() - since < 1000, 'well before the 1.6 s backoff');
    // A failure that is not a refused connection is not probed: it waits its backoff.
    r.fail('invalid_jpeg');
    const opens = r.opens;
    await sleep(300);
    assert.equal(r.opens, opens);
  } finally {
    await r.stop();
    await new Promise((res) => camera.close(res));
  }
});

test('states: connecting until the first frame, then streaming; online only while frames arrive', async () => {
  const r = new ScriptedReader({ kind: 'snapshot', url: 'http://camera/x.jpg' }, { reconnectIntervalSec: 0.01, maxBackoffSec: 10, maxRetries: -1, watchdogMs: 150, identicalFrameLimit: 5 }, quiet, 50);
  try {
    r.start();
    assert.equal(r.state, 'connecting');
    assert.equal(r.stats.online, false, 'not online before the first frame');
    r.frame();
    assert.equal(r.state, 'streaming');
    assert.equal(r.stats.online, true);
    // No more frames: the watchdog ends the stream, the reader backs off and reconnects.
    for (let i = 0; i < 100 && (r.stats.failures.stalled ?? 0) === 0; i++) await sleep(10);
    assert.equal(r.stats.failures.stalled, 1);
    assert.notEqual(r.state, 'streaming');
    assert.equal(r.stats.online, false);
    for (let i = 0; i < 100 && r.state !== 'connecting'; i++) await sleep(5);
    assert.equal(r.state, 'connecting');
    assert.equal(r.stats.reconnects, 1);
  } finally {
    await r.stop();
  }
  assert.equal(r.state, 'stopped');
  // Late callbacks after the stop change nothing.
  r.fail('exited');
  r.frame();
  assert.equal(r.state, 'stopped');
  assert.equal(r.stats.framesRead, 1);
  assert.deepEqual(r.stats.failures, { stalled: 1 });
  await r.stop();
});

test('states: max_retries spent is failed, for good; a late failure during backoff is not counted twice', async () => {
  const r = new ScriptedReader({ kind: 'snapshot', url: 'http://camera/x.jpg' }, { reconnectIntervalSec: 0.01, maxBackoffSec: 10, maxRetries: 1, watchdogMs: 60_000, identicalFrameLimit: 5 }, quiet, 50);
  // Read through a function: the asserts below would otherwise narrow the type for good.
  const state = (): ReaderState => r.state;
  r.start();
  try {
    r.fail('timeout');
    assert.equal(r.state, 'backoff');
    r.fail('timeout');
    assert.equal(r.stats.consecutiveFailures, 1, 'no stream was open: nothing ended');
    for (let i = 0; i < 100 && state() !== 'connecting'; i++) await sleep(5);
    r.fail('timeout');
    assert.equal(state(), 'failed');
    assert.equal(r.stats.retryInMs, 0);
    const opens = r.opens;
    await sleep(50);
    assert.equal(r.opens, opens, 'a failed reader does not reconnect');
    assert.deepEqual(r.stats.failures, { timeout: 2 });
  } finally {
    await r.stop();
  }
  assert.equal(r.state, 'stopped');
});

/** A video reader: the same picture over and over means the stream froze. */
class FrozenReader extends ScriptedReader {
  protected override readonly detectsRepeats: boolean = true;
  same(): void {
    this.deliver(Buffer.from([1, 2, 3]), { width: 1, height: 1 });
  }
}

test('a frozen stream (the same frame identicalFrameLimit times) is a failure that backs off', () => {
  const r = new FrozenReader({ kind: 'rtsp', url: 'rtsp://camera/x' }, { reconnectIntervalSec: 0.01, maxBackoffSec: 10, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 5, healthyAfterMs: 1000 }, quiet, 2);
  r.start();
  try {
    for (let i = 0; i < 5; i++) r.same();
    assert.equal(r.stats.state, 'streaming', 'four repeats are a still scene');
    r.same();
    assert.equal(r.stats.state, 'backoff');
    assert.equal(r.stats.failures.repeated, 1);
  } finally {
    void r.stop();
  }
});
