/**
 * The real relay process under a flood of hostile CMS frames (test/support/cms-fuzz.ts,
 * seeded: FUZZ_SEED / FUZZ_COUNT reproduce a run): the connection stays open, the process
 * stays alive, heartbeats keep their pace, nothing invalid is ever subscribed, no ffmpeg is
 * started for anything but rtsp(s)://, and a valid subscription after the flood works.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import WebSocket from 'ws';
import { parseCmsMessage } from '@detector-worker/shared/protocol/messages';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { freePort } from '@detector-worker/testkit/servers';
import { startStubInfer, type StubInfer } from '@detector-worker/testkit/stub-infer';
import { CmsClient } from './support/cms-client.js';
import { cmsFuzz, frameBytes, type FuzzFrame } from './support/cms-fuzz.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_240_611);
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
/** The protocol's heartbeat is 2 s; a gap above this means the flood starved it. */
const MAX_REPORT_GAP_MS = 5000;

let work: string;
let stub: StubInfer;
let snapshots: Server;
let snapshotUrl: string;
let relay: ChildProcess;
let relayPort: number;
let relayOut = '';
/** Every ffmpeg the relay starts appends its arguments here. */
let ffmpegLog: string;

const ffmpegRuns = () => (existsSync(ffmpegLog) ? readFileSync(ffmpegLog, 'utf8').split('\n').filter(Boolean) : []);
const wsUrl = () => `ws://127.0.0.1:${relayPort}/`;
const alive = () => relay.exitCode === null && relay.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hostile-cms-'));
  ffmpegLog = join(work, 'ffmpeg-runs.txt');
  const fakeFfmpeg = join(work, 'ffmpeg');
  await writeFile(fakeFfmpeg, `#!/bin/sh\necho "$*" >> '${ffmpegLog}'\nexit 1\n`);
  await chmod(fakeFfmpeg, 0o755);
  stub = await startStubInfer();
  const photo = await sharp({ create: { width: 160, height: 120, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  snapshots = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo));
  await new Promise<void>((r) => snapshots.listen(0, '127.0.0.1', r));
  snapshotUrl = `http://127.0.0.1:${(snapshots.address() as { port: number }).port}/snap.jpg`;

  relayPort = await freePort();
  relay = spawn(process.execPath, [join(repoRoot, 'services', 'relay', 'dist', 'main.js')], {
    env: { ...process.env, LOG_PRETTY: '0', LOG_LEVEL: 'info', RELAY_HOST: '127.0.0.1', RELAY_PORT: String(relayPort), INFER_URL: stub.url, FFMPEG_PATH: fakeFfmpeg, RELAY_CONFIG: '', HEARTBEAT_INTERVAL_MS: '2000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Kept bounded: only the tail matters for a failure message.
  const keep = (d: Buffer) => (relayOut = (relayOut + d.toString()).slice(-200_000));
  relay.stdout!.on('data', keep);
  relay.stderr!.on('data', keep);
  const end = Date.now() + 20_000;
  for (;;) {
    if (!alive()) throw new Error(`relay exited at start:\n${relayOut}`);
    try {
      const res = await request(`http://127.0.0.1:${relayPort}/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`relay not healthy within 20 s:\n${relayOut}`);
    await sleep(100);
  }
});

after(async () => {
  if (relay && alive()) {
    const exited = new Promise((r) => relay.once('exit', r));
    relay.kill('SIGTERM');
    const timer = setTimeout(() => relay.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await stub?.close();
  if (snapshots) await new Promise<void>((r) => snapshots.close(() => r()));
  if (work) await rm(work, { recursive: true, force: true });
});

test('the fuzz is reproducible, and none of its frames is a valid subscribe or a requestState', () => {
  const a = [...cmsFuzz(SEED, COUNT)];
  const b = [...cmsFuzz(SEED, COUNT)];
  assert.deepEqual(a.map((f) => f.label), b.map((f) => f.label));
  assert.ok(a.every((f, i) => Buffer.from(f.data).equals(Buffer.from(b[i]!.data))));
  assert.notDeepEqual([...cmsFuzz(SEED + 1, 50)].map((f) => f.label), a.slice(0, 50).map((f) => f.label));
  for (const f of a) {
    if (f.kind !== 'text' || typeof f.data !== 'string') continue;
    const parsed = parseCmsMessage(f.data);
    if (parsed.ok) assert.ok(!['subscribe', 'requestState'].includes(parsed.command.type), `${f.label}: ${f.data.slice(0, 300)}`);
  }
  const kinds = new Set(a.map((f) => f.label.split(':')[0]));
  for (const k of ['subscribe', 'invalid UTF-8 text frame', 'binary noise', '100000 nested arrays', '1 MB type']) assert.ok(kinds.has(k), `the fuzz covers ${k}`);
});

function sendFrame(socket: WebSocket, f: FuzzFrame): void {
  socket.send(f.data, { binary: f.kind === 'binary' });
}

/** Waits while the client has a lot queued, so the flood measures the relay, not our buffer. */
async function drain(socket: WebSocket, limit: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (socket.bufferedAmount > limit) {
    if (Date.now() > end) throw new Error(`client send buffer stuck at ${socket.bufferedAmount} bytes`);
    await sleep(5);
  }
}

test(`a flood of ${COUNT} hostile CMS frames (seed ${SEED}) is survived with heartbeats on time`, async (t) => {
  const cms = await CmsClient.connect(wsUrl());
  let closed: { code: number; reason: string } | undefined;
  cms.socket.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
  const recent: string[] = [];
  try {
    await cms.waitFor((m) => m.type === 'stateReport', 5000);
    const started = Date.now();
    let bytes = 0;
    let n = 0;
    for (const frame of cmsFuzz(SEED, COUNT)) {
      assert.equal(closed, undefined, `connection closed after frame ${n} (${recent.join(' | ')}): ${JSON.stringify(closed)}`);
      sendFrame(cms.socket, frame);
      bytes += frameBytes(frame);
      recent.push(`#${n} ${frame.label}`);
      if (recent.length > 5) recent.shift();
      n++;
      await drain(cms.socket, 2 * 1024 * 1024);
    }
    await drain(cms.socket, 0);
    const sent = Date.now();
    // Heartbeats keep coming after the flood too.
    await sleep(4500);
    const reports = cms.messages.filter((m) => m.type === 'stateReport' && m.receivedAt >= started - 2500);
    const times = [started, ...reports.map((m) => m.receivedAt), Date.now()];
    const gaps = times.slice(1).map((x, i) => x - times[i]!);
    const maxGap = Math.max(...gaps);
    t.diagnostic(`sent ${n} frames, ${(bytes / 1e6).toFixed(1)} MB in ${sent - started} ms; ${reports.length} state reports, largest gap ${maxGap} ms; relay log ${relayOut.split('\n').length} lines (tail kept)`);

    assert.equal(closed, undefined, `the connection was closed: ${JSON.stringify(closed)}`);
    assert.equal(cms.socket.readyState, WebSocket.OPEN);
    assert.ok(alive(), `the relay process died:\n${relayOut.slice(-4000)}`);
    assert.ok(maxGap <= MAX_REPORT_GAP_MS, `state reports starved: a ${maxGap} ms gap (gaps ${gaps.join(', ')})`);
    for (const r of reports) assert.deepEqual(r.cameraConnections, [], `an invalid subscription was reported: ${JSON.stringify(r.cameraConnections).slice(0, 500)}`);
    assert.deepEqual(ffmpegRuns(), [], 'no ffmpeg was started for any fuzzed camera URL');
    assert.doesNotMatch(relayOut, /"level":(50|60)/, 'no error or fatal log line');

    // A valid subscription after the flood works end to end.
    const since = Date.now();
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: 'after-flood;cam-1', snapshotUrl, snapshotInterval: 200, modelUrl: 'http://127.0.0.1:1/m.mpta', modelName: 'Cars', modelId: 5 } });
    const detection = await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'after-flood;cam-1', 10_000, since);
    assert.deepEqual(Object.values(detection.data.detection).filter((v) => v !== null && typeof v === 'object'), [], 'the detection is flat');
    const online = await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.length > 0, 5000, since);
    assert.deepEqual(online.cameraConnections.map((c: { subscriptionIdentifier: string }) => c.subscriptionIdentifier), ['after-flood;cam-1']);

    // And a real rtsp:// one does reach ffmpeg: the check above would have seen one.
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: 'after-flood;cam-2', rtspUrl: 'rtsp://127.0.0.1:1/stream', modelUrl: 'http://127.0.0.1:1/m.mpta', modelName: 'Cars', modelId: 5 } });
    const end = Date.now() + 10_000;
    const reachesCamera = () => ffmpegRuns().some((line) => line.includes('rtsp://127.0.0.1:1/stream'));
    while (!reachesCamera() && Date.now() < end) await sleep(50);
    assert.ok(reachesCamera(), ffmpegRuns().join('\n'));
    // (The keyframe gate's decoder reads the demuxer's output from its stdin, not the camera.)
    assert.ok(ffmpegRuns().every((line) => line.includes('rtsp://127.0.0.1:1/stream') || / -i pipe:0 /.test(line)), ffmpegRuns().join('\n'));
  } finally {
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'after-flood;cam-1' } });
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'after-flood;cam-2' } });
    await cms.close();
  }
});

test('a frame over the 1 MiB limit closes only that connection (1009); the relay carries on', async () => {
  const cms = await CmsClient.connect(wsUrl());
  const closed = new Promise<number>((r) => cms.socket.once('close', (code) => r(code)));
  cms.send(JSON.stringify({ type: 'requestState', pad: 'x'.repeat(2 * 1024 * 1024) }));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([closed, new Promise<'open'>((r) => (timer = setTimeout(() => r('open'), 10_000)))]);
  clearTimeout(timer);
  assert.equal(code, 1009);
  assert.ok(alive());
  const again = await CmsClient.connect(wsUrl());
  try {
    await again.waitFor((m) => m.type === 'stateReport', 5000);
  } finally {
    await again.close();
  }
});
