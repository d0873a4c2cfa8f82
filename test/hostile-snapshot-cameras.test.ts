/**
 * Hostile snapshot cameras against the real relay process. Every camera first serves valid
 * JPEGs until the relay reports it online, then turns hostile (drip a byte a second, random
 * bytes, 50 MB bodies, silence, a fake JPEG that starts with FF D8); one more is a valid
 * camera that closes its connection after every answer. Each hostile camera must go offline
 * in the CMS stateReport, be counted in relay_camera_failures_total with its reason, be
 * logged with the reason, and back off with growing delays; sockets to it and the relay's
 * memory must stay bounded. The whole file is bounded to well under a minute.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { startStubInfer, type StubInfer } from '@detector-worker/testkit/stub-infer';
import { CmsClient } from './support/cms-client.js';
import { startHostileCamera, type CameraMode, type HostileCamera } from './support/hostile-cameras.js';

const TIMEOUT_MS = 1000;
const MAX_BYTES = 2 * 1024 * 1024;
const INTERVAL_MS = 200;
/** How long the cameras stay hostile: enough for four or five growing backoffs. */
const HOSTILE_FOR_MS = 7000;

interface Case {
  id: string;
  mode: CameraMode;
  /** The failure reason it must be counted under. */
  reason: string;
  camera?: HostileCamera;
  offlineAfterMs?: number;
}

const cases: Case[] = [
  { id: 'd;drip', mode: 'drip', reason: 'timeout' },
  { id: 'd;random', mode: 'random', reason: 'not_jpeg' },
  { id: 'd;huge', mode: 'huge', reason: 'too_large' },
  { id: 'd;huge-declared', mode: 'huge-declared', reason: 'too_large' },
  { id: 'd;silent', mode: 'silent', reason: 'timeout' },
  { id: 'd;fake-jpeg', mode: 'fake-jpeg', reason: 'invalid_jpeg' },
];

let stub: StubInfer;
let relay: ChildProcess;
let relayUrl: string;
let closeCamera: HostileCamera;
let fakeFromStart: HostileCamera;
let cms: CmsClient | undefined;
const logs: Array<Record<string, any>> = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function subscribe(id: string, url: string): void {
  cms!.send({ type: 'subscribe', payload: { subscriptionIdentifier: id, snapshotUrl: url, snapshotInterval: INTERVAL_MS, modelUrl: 'http://m/x.mpta', modelName: 'x', modelId: 1 } });
}

function online(report: Record<string, any>, id: string): boolean | undefined {
  return report.cameraConnections.find((c: any) => c.subscriptionIdentifier === id)?.online;
}

/** relay_camera_failures_total and friends for one camera URL. */
function metric(text: string, name: string, url: string, reason?: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`camera="${url}"`) && (!reason || l.includes(`reason="${reason}"`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

before(async () => {
  const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#406080' } }).jpeg().toBuffer();
  stub = await startStubInfer();
  for (const c of cases) c.camera = await startHostileCamera(jpeg, 'good');
  closeCamera = await startHostileCamera(jpeg, 'close');
  fakeFromStart = await startHostileCamera(jpeg, 'fake-jpeg');
  const port = await freePort();
  relayUrl = `http://127.0.0.1:${port}`;
  relay = spawn(process.execPath, [join(repoRoot, 'services/relay/dist/main.js')], {
    env: {
      ...process.env,
      RELAY_PORT: String(port),
      RELAY_HOST: '127.0.0.1',
      INFER_URL: stub.url,
      LOG_LEVEL: 'info',
      LOG_PRETTY: '0',
      HEARTBEAT_INTERVAL_MS: '200',
      SNAPSHOT_TIMEOUT_MS: String(TIMEOUT_MS),
      SNAPSHOT_MAX_BYTES: String(MAX_BYTES),
      RECONNECT_INTERVAL_SEC: '0.2',
      MAX_BACKOFF_SEC: '1.6',
      WATCHDOG_MS: '4000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let pending = '';
  relay.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, any>);
      } catch {
        // not a log line
      }
    }
  });
  relay.stderr!.resume();
  for (let i = 0; i < 100 && !cms; i++) {
    cms = await CmsClient.connect(`ws://127.0.0.1:${port}/`).catch(async () => {
      await new Promise((r) => setTimeout(r, 100));
      return undefined;
    });
  }
  assert.ok(cms, 'the relay accepted the CMS');
});

after(async () => {
  await cms?.close();
  if (relay && relay.exitCode === null) {
    const exited = new Promise((r) => relay.once('exit', r));
    relay.kill('SIGTERM');
    const force = setTimeout(() => relay.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  }
  await stub?.close();
  for (const c of [...cases.map((x) => x.camera), closeCamera, fakeFromStart]) await c?.close();
});

test('hostile snapshot cameras go offline with a counted, logged reason and back off; nothing piles up', async () => {
  for (const c of cases) subscribe(c.id, c.camera!.url);
  subscribe('d;close', closeCamera.url);
  subscribe('d;fake-from-start', fakeFromStart.url);
  await cms!.waitFor((m) => m.type === 'stateReport' && [...cases.map((c) => c.id), 'd;close'].every((id) => online(m, id) === true), 15_000);

  // Memory and sockets from here on.
  const rssBefore = rssBytes(relay.pid!);
  let rssMax = rssBefore;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssBytes(relay.pid!))), 250);
  const closeFramesBefore = metric(await (await request(`${relayUrl}/metrics`)).body.text(), 'relay_camera_frames_read_total', closeCamera.url);
  const flipped = Date.now();
  const dripBytesBefore = cases.find((c) => c.mode === 'drip')!.camera!.bytesSent;
  const requestsBefore = new Map(cases.map((c) => [c.mode, c.camera!.requests]));
  for (const c of cases) c.camera!.mode = c.mode;
  try {
    // Time to offline, from the stateReports (one every 200 ms).
    const end = flipped + HOSTILE_FOR_MS;
    while (Date.now() < end) {
      for (const m of cms!.messages) {
        if (m.type !== 'stateReport' || m.receivedAt < flipped) continue;
        for (const c of cases) if (c.offlineAfterMs === undefined && online(m, c.id) === false) c.offlineAfterMs = m.receivedAt - flipped;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    clearInterval(sampler);
  }
  const metrics = await (await request(`${relayUrl}/metrics`)).body.text();
  const last = cms!.messages.filter((m) => m.type === 'stateReport').at(-1)!;
  const summary: Record<string, unknown> = {};
  for (const c of cases) {
    const camera = c.camera!;
    const ended = logs.filter((l) => l.msg === 'camera stream ended; reconnecting' && String(l.camera).includes(camera.url) && l.time >= flipped);
    const delays = ended.map((l) => l.retryInMs as number);
    summary[c.mode] = { offlineAfterMs: c.offlineAfterMs, failures: metric(metrics, 'relay_camera_failures_total', camera.url, c.reason), reason: ended[0]?.reason, delays, maxSockets: camera.maxOpenSockets, requests: camera.requests - requestsBefore.get(c.mode)! };
    assert.ok(c.offlineAfterMs !== undefined, `${c.mode}: went offline (${JSON.stringify(summary[c.mode])})`);
    assert.ok(c.offlineAfterMs! < TIMEOUT_MS + 2000, `${c.mode}: offline within the snapshot deadline, took ${c.offlineAfterMs} ms`);
    assert.equal(online(last, c.id), false, `${c.mode}: still offline at the end`);
    assert.ok(metric(metrics, 'relay_camera_failures_total', camera.url, c.reason) >= 2, `${c.mode}: counted as ${c.reason}: ${metrics.split('\n').filter((l) => l.includes(camera.url)).join('\n')}`);
    assert.ok(ended.length >= 2 && ended.every((l) => l.kind === c.reason && typeof l.reason === 'string' && l.reason.length > 0), `${c.mode}: logged with the reason: ${JSON.stringify(ended.slice(0, 2))}`);
    // Backoff: each delay at least the one before, and growing to the cap.
    assert.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!), `${c.mode}: delays never shrink: ${delays}`);
    assert.ok(delays.at(-1)! > delays[0]!, `${c.mode}: delays grow: ${delays}`);
    assert.ok(delays.length <= 8 && camera.requests - requestsBefore.get(c.mode)! <= 9, `${c.mode}: no hammering: ${JSON.stringify(summary[c.mode])}`);
    assert.ok(camera.maxOpenSockets <= 3, `${c.mode}: at most 3 sockets open at once, saw ${camera.maxOpenSockets}`);
  }
  // The drip camera cannot take longer than the deadline: at most one byte a second got through per attempt.
  const drip = cases.find((c) => c.mode === 'drip')!;
  const dripped = drip.camera!.bytesSent - dripBytesBefore;
  assert.ok(dripped < 32, `the dripping camera was cut at the deadline (${dripped} bytes sent)`);
  const huge = cases.find((c) => c.mode === 'huge')!;
  // Socket buffers take a few MB more than the relay reads; far from 50 MB per attempt.
  const hugeAttempts = huge.camera!.requests - requestsBefore.get('huge')!;
  assert.ok(huge.camera!.bytesSent < hugeAttempts * 20 * 2 ** 20, `the 50 MB camera was cut at the cap (${huge.camera!.bytesSent} bytes in ${hugeAttempts} attempts)`);

  // The valid camera that closes its connection after every answer: frames flow, online all along.
  const closeFrames = metric(metrics, 'relay_camera_frames_read_total', closeCamera.url) - closeFramesBefore;
  summary.close = { frames: closeFrames, maxSockets: closeCamera.maxOpenSockets, requests: closeCamera.requests };
  assert.ok(closeFrames >= 15, `Connection: close camera delivered ${closeFrames} frames in ${HOSTILE_FOR_MS} ms`);
  assert.ok(cms!.messages.filter((m) => m.type === 'stateReport' && m.receivedAt >= flipped).every((m) => online(m, 'd;close') === true), 'the Connection: close camera stayed online');
  assert.equal(metric(metrics, 'relay_camera_failures_total', closeCamera.url), 0);
  assert.ok(closeCamera.maxOpenSockets <= 2, `Connection: close camera: ${closeCamera.maxOpenSockets} sockets at once`);

  // A fake JPEG from the start: never online, never a frame to serve.
  assert.ok(cms!.messages.filter((m) => m.type === 'stateReport').every((m) => online(m, 'd;fake-from-start') !== true), 'a fake JPEG never counts as online');
  const image = await request(`${relayUrl}/camera/${encodeURIComponent('d;fake-from-start')}/image`);
  assert.equal(image.statusCode, 404);
  assert.equal(((await image.body.json()) as { code: string }).code, 'NO_FRAME');
  assert.equal(metric(metrics, 'relay_camera_online', fakeFromStart.url), 0);
  assert.equal(metric(metrics, 'relay_camera_frames_read_total', fakeFromStart.url), 0);
  assert.ok(!stub.requests.some((r) => r.at >= flipped + 2 * TIMEOUT_MS && r.bytes > 15_000), 'no fake JPEG went to infer');

  // Memory: 50 MB answers are cut at the cap, nothing accumulates.
  summary.rss = { beforeMb: Math.round(rssBefore / 2 ** 20), maxMb: Math.round(rssMax / 2 ** 20) };
  assert.ok(rssMax - rssBefore < 150 * 2 ** 20, `relay RSS grew from ${rssBefore} to ${rssMax}`);
  // Sockets to hostile cameras are released between attempts.
  for (const c of cases) assert.ok(c.camera!.openSockets() <= 2, `${c.mode}: ${c.camera!.openSockets()} sockets still open`);
  console.log(`hostile snapshot cameras: ${JSON.stringify(summary)}`);
});
