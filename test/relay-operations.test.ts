/**
 * Operating the relay: the CMS token, invalid configuration failing at start with the
 * variable's name, metrics and probes, and SIGTERM on a busy relay (ffmpeg children stopped,
 * exit code 0).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import WebSocket from 'ws';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { buildRelay, startRelay } from '@detector-worker/relay/server';
import { fixture, repoRoot, requireService } from '@detector-worker/testkit/fixtures';
import { startRtspServer } from '@detector-worker/testkit/rtsp-server';
import { startStubInfer } from '@detector-worker/testkit/stub-infer';
import { CmsClient } from './support/cms-client.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('buildRelay: routes answer before listening (inject), start() opens the port, close() is idempotent', async () => {
  const stub = await startStubInfer();
  const relay = await buildRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: stub.url }, pino({ level: 'silent' }));
  try {
    assert.equal((await relay.app.inject({ url: '/healthz' })).statusCode, 200);
    const ready = await relay.app.inject({ url: '/readyz' });
    assert.deepEqual(ready.json(), { status: 'ready', subscriptions: 0, cms: 0 });
    const missing = await relay.app.inject({ url: `/camera/${encodeURIComponent('d;c')}/image` });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'CAMERA_NOT_FOUND');
    const { url, port } = await relay.start();
    assert.ok(port > 0);
    assert.equal(url, `http://127.0.0.1:${port}`);
    const cms = await CmsClient.connect(`ws://127.0.0.1:${port}/`);
    await cms.waitFor((m) => m.type === 'stateReport', 3000);
    const closed = new Promise((r) => cms.socket.once('close', r));
    await Promise.all([relay.close(), relay.close()]);
    await closed;
  } finally {
    await relay.close();
    await stub.close();
  }
});

test('RELAY_TOKEN: the WebSocket and HTTP routes need it; probes and metrics do not', async () => {
  const stub = await startStubInfer();
  const relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: stub.url, relayToken: 'tok' }, pino({ level: 'silent' }));
  try {
    const refused = new WebSocket(`ws://127.0.0.1:${relay.port}/`);
    const code = await new Promise<number>((r) => refused.on('close', (c) => r(c)));
    assert.equal(code, 1008);
    const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/?token=tok`);
    await cms.waitFor((m) => m.type === 'stateReport', 3000);
    await cms.close();
    assert.equal((await request(`${relay.url}/camera/a;b/image`)).statusCode, 401);
    assert.equal((await request(`${relay.url}/camera/a;b/image?token=tok`)).statusCode, 404);
    assert.equal((await request(`${relay.url}/healthz`)).statusCode, 200);
    const metrics = await request(`${relay.url}/metrics`);
    const text = await metrics.body.text();
    assert.match(text, /relay_cms_connected 0/);
    assert.match(text, /relay_ffmpeg_processes 0/);
    assert.match(text, /relay_subscriptions 0/);
    assert.match(text, /relay_subscriptions_refused_total\{reason="max_streams"\} 0/);
  } finally {
    await relay.close();
    await stub.close();
  }
});

test('INFER_TOKEN: the relay sends it to infer as a bearer token', async () => {
  const stub = await startStubInfer();
  const camera = (await import('node:http')).createServer(async (_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(await (await import('sharp')).default({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).jpeg().toBuffer()));
  await new Promise<void>((r) => camera.listen(0, '127.0.0.1', r));
  const relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: stub.url, inferToken: 'infer-secret' }, pino({ level: 'silent' }));
  const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/`);
  try {
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: 'd;c', snapshotUrl: `http://127.0.0.1:${(camera.address() as { port: number }).port}/s.jpg`, snapshotInterval: 200, modelUrl: 'http://m/x.mpta', modelName: 'x', modelId: 1 } });
    await cms.waitFor((m) => m.type === 'imageDetection', 10_000);
    assert.equal(stub.requests[0]!.authorization, 'Bearer infer-secret');
  } finally {
    await cms.close();
    await relay.close();
    await stub.close();
    camera.close();
  }
});

test('invalid configuration stops both services at start, naming the variable', () => {
  const relay = spawnSync(process.execPath, [join(repoRoot, 'services/relay/dist/main.js')], { env: { ...process.env, RELAY_PORT: 'not-a-port', LOG_PRETTY: '0' }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(relay.status, 1);
  assert.match(relay.stdout + relay.stderr, /RELAY_PORT/);
  const infer = spawnSync(process.execPath, [join(repoRoot, 'services/infer/dist/main.js')], { env: { ...process.env, INFER_WORKERS: '0', LOG_PRETTY: '0' }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(infer.status, 1);
  assert.match(infer.stdout + infer.stderr, /INFER_WORKERS/);
});

test('SIGTERM on a busy relay: ffmpeg children are stopped and it exits 0', async (t) => {
  if (spawnSync('ffmpeg', ['-version']).status !== 0) return requireService(t, 'ffmpeg', 'not installed (apt-get install -y ffmpeg)');
  const video = fixture(t, 'video/traffic_640x360.mp4');
  if (!video) return;
  const rtsp = await startRtspServer(video);
  const stub = await startStubInfer();
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'services/relay/dist/main.js')], {
    env: { ...process.env, RELAY_PORT: String(port), RELAY_HOST: '127.0.0.1', INFER_URL: stub.url, LOG_LEVEL: 'warn', LOG_PRETTY: '0' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    let cms: CmsClient | undefined;
    for (let i = 0; i < 100 && !cms; i++) {
      cms = await CmsClient.connect(`ws://127.0.0.1:${port}/`).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
    }
    assert.ok(cms, 'relay accepted the CMS');
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: 'd;c', rtspUrl: rtsp.url, modelUrl: 'http://m/x.mpta', modelName: 'x', modelId: 1 } });
    await cms.waitFor((m) => m.type === 'imageDetection', 30_000);
    const ffmpeg = execFileSync('pgrep', ['-P', String(child.pid), 'ffmpeg']).toString().trim().split('\n').map(Number);
    assert.equal(ffmpeg.length, 2, 'the camera\'s demuxer and decoder (IDLE_SLOW_CAMERA, the default)');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0, stderr);
    await new Promise((r) => setTimeout(r, 300));
    const alive = ffmpeg.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, [], 'ffmpeg children were stopped');
    await cms.close();
  } finally {
    child.kill('SIGKILL');
    await stub.close();
    await rtsp.stop();
  }
});
