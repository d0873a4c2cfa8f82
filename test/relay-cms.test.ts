/**
 * The relay as the CMS sees it, with real processes on loopback: a WebSocket client playing
 * the CMS, an HTTP server serving fixture photos as snapshots, and a stub infer that records
 * every request (so sessions, late results and backoff can be checked exactly).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { pino } from 'pino';
import { request } from 'undici';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay, type Relay } from '@detector-worker/relay/server';
import { fixture } from '@detector-worker/testkit/fixtures';
import { CmsClient } from './support/cms-client.js';
import { startStubInfer, type StubInfer } from '@detector-worker/testkit/stub-infer';

let relay: Relay;
let stub: StubInfer;
let snapshots: Server;
let snapshotUrl: string;
let snapshotHits = 0;
let photo: Buffer;

before(async () => {
  stub = await startStubInfer();
  // Per-frame mode (tracking off in the pipeline): these tests are about every answer's way to the CMS.
  stub.tracking = { enabled: false };
  photo = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#884422' } }).jpeg().toBuffer();
  snapshots = createServer((req, res) => {
    snapshotHits++;
    if (req.url === '/missing') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo);
  });
  await new Promise<void>((r) => snapshots.listen(0, '127.0.0.1', r));
  snapshotUrl = `http://127.0.0.1:${(snapshots.address() as { port: number }).port}/snap.jpg`;
  const config = { ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: stub.url, heartbeatIntervalMs: 2000, reconnectGraceMs: 1500, reconnectIntervalSec: 0.2, maxBackoffSec: 1, maxStreams: 4 };
  relay = await startRelay(config, pino({ level: 'silent' }));
});

after(async () => {
  await relay?.close();
  await stub?.close();
  await new Promise<void>((r) => snapshots.close(() => r()));
});

const wsUrl = () => `ws://127.0.0.1:${relay.port}/`;
const subscribe = (id: string, extra: Record<string, unknown> = {}) => ({
  type: 'subscribe',
  payload: { subscriptionIdentifier: id, snapshotUrl, snapshotInterval: 200, modelUrl: 'http://models.example/cars.mpta', modelName: 'Cars', modelId: 101, ...extra },
});

test('state reports as heartbeats, subscribe -> online -> imageDetection, image endpoint, unsubscribe', async () => {
  const cms = await CmsClient.connect(wsUrl());
  try {
    const first = await cms.waitFor((m) => m.type === 'stateReport', 3000);
    for (const key of ['cpuUsage', 'memoryUsage', 'gpuUsage', 'gpuMemoryUsage', 'cameraConnections']) assert.ok(key in first, key);
    assert.equal(typeof first.cpuUsage, 'number');
    assert.ok(first.memoryUsage > 0 && first.memoryUsage <= 100);
    assert.deepEqual(first.cameraConnections, []);
    const second = await cms.waitFor((m) => m.type === 'stateReport' && m !== first, 5000);
    assert.ok(second.receivedAt - (first as any).receivedAt >= 1000, 'heartbeats are spaced by the interval');

    const since = Date.now();
    cms.send(subscribe('display-1;cam-1', { cropX1: 10, cropY1: 20, cropX2: 210, cropY2: 220 }));
    const online = await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.some((c: any) => c.online), 10_000, since);
    assert.deepEqual(online.cameraConnections, [{ subscriptionIdentifier: 'display-1;cam-1', modelId: 101, modelName: 'Cars', online: true, cropX1: 10, cropY1: 20, cropX2: 210, cropY2: 220 }]);
    const detection = await cms.waitFor((m) => m.type === 'imageDetection', 10_000, since);
    assert.equal(detection.subscriptionIdentifier, 'display-1;cam-1');
    assert.ok(!Number.isNaN(Date.parse(detection.timestamp)) && detection.timestamp.endsWith('Z'));
    assert.deepEqual(detection.data, { detection: { class: 'car', confidence: 0.9, carBrand: 'Honda' }, modelId: 101, modelName: 'Cars' });
    // The crop was applied before sending: 200x200 out of 320x240.
    const sent = stub.requests.at(-1)!;
    assert.equal(sent.modelId, '101');
    assert.equal(sent.query.modelUrl, 'http://models.example/cars.mpta');
    assert.equal(sent.query.subscriptionIdentifier, 'display-1;cam-1');
    assert.equal(sent.query.displayId, 'display-1');
    assert.ok(sent.query.requestId && sent.query.capturedAt);

    const image = await request(`${relay.url}/camera/${encodeURIComponent('display-1;cam-1')}/image`);
    assert.equal(image.statusCode, 200);
    assert.equal(image.headers['content-type'], 'image/jpeg');
    const meta = await sharp(Buffer.from(await image.body.arrayBuffer())).metadata();
    assert.equal(meta.format, 'jpeg');
    const raw = await request(`${relay.url}/camera/display-1;cam-1/image`);
    assert.equal(raw.statusCode, 200);
    await raw.body.dump();
    const unknown = await request(`${relay.url}/camera/nope;nope/image`);
    assert.equal(unknown.statusCode, 404);
    assert.equal(((await unknown.body.json()) as any).code, 'CAMERA_NOT_FOUND');

    const before = Date.now();
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-1;cam-1' } });
    cms.send({ type: 'requestState' });
    await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.length === 0, 5000, before);
    assert.equal(relay.hub.readers().length, 0, 'camera reader stopped with its last subscription');
  } finally {
    await cms.close();
  }
});

test('two displays on one camera share one reader and one request per frame; results fan out per display', async () => {
  const cms = await CmsClient.connect(wsUrl());
  try {
    const since = Date.now();
    cms.send(subscribe('display-a;cam-9'));
    cms.send(subscribe('display-b;cam-9'));
    cms.send(subscribe('display-b;cam-9')); // idempotent
    await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-a;cam-9', 10_000, since);
    await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-b;cam-9', 10_000, since);
    assert.equal(relay.hub.readers().length, 1);
    assert.equal(relay.registry.groupCount(), 1);
    const hits = snapshotHits;
    const sent = relay.registry.get('display-a;cam-9')!.group.stats.framesSent;
    await new Promise((r) => setTimeout(r, 1000));
    const frames = relay.registry.get('display-a;cam-9')!.group.stats.framesSent - sent;
    assert.ok(snapshotHits - hits <= frames + 2, 'one snapshot per cycle for both displays');
    // A changed payload (new model) is applied in place and splits the group.
    cms.send(subscribe('display-b;cam-9', { modelId: 102 }));
    await cms.waitFor((m) => m.type === 'imageDetection' && m.data.modelId === 102, 10_000, Date.now());
    assert.equal(relay.registry.groupCount(), 2);
    assert.equal(relay.hub.readers().length, 1, 'still one camera reader');
  } finally {
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-a;cam-9' } });
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-b;cam-9' } });
    await cms.close();
  }
});

test('setSessionId reaches infer; a result that returns after the session changed becomes patchSession', async () => {
  const cms = await CmsClient.connect(wsUrl());
  try {
    cms.send(subscribe('display-s;cam-1'));
    cms.send({ type: 'setSessionId', payload: { displayIdentifier: 'display-s', sessionId: 111 } });
    await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-s;cam-1', 10_000);
    for (let i = 0; i < 100 && !stub.requests.some((r) => r.query.sessionId === '111'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(stub.requests.some((r) => r.query.sessionId === '111' && r.query.subscriptionIdentifier === 'display-s;cam-1'));

    // Slow infer: the next answer comes back after the session changed.
    stub.delayMs = 1500;
    const n = stub.requests.length;
    for (let i = 0; i < 100 && stub.requests.length === n; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(stub.requests.at(-1)!.query.sessionId, '111');
    const changedAt = Date.now();
    cms.send({ type: 'setSessionId', payload: { displayIdentifier: 'display-s', sessionId: 222 } });
    const patch = await cms.waitFor((m) => m.type === 'patchSession', 10_000, changedAt);
    assert.deepEqual(patch, { type: 'patchSession', sessionId: 111, data: { currentCar: { class: 'car', confidence: 0.9, carBrand: 'Honda' } }, receivedAt: patch.receivedAt });
    cms.send({ type: 'patchSessionResult', payload: { sessionId: 111, success: false, message: 'no such session' } });
    cms.send({ type: 'setSessionId', payload: { displayIdentifier: 'display-s', sessionId: null } });
  } finally {
    stub.delayMs = 0;
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-s;cam-1' } });
    await cms.close();
  }
});

test('malformed and invalid messages are ignored and the connection keeps working', async () => {
  const cms = await CmsClient.connect(wsUrl());
  try {
    cms.send('this is not json');
    cms.send('[1,2,3]');
    cms.send({ type: 'launchRockets' });
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: 'no-semicolon', snapshotUrl, modelUrl: 'x', modelName: 'x', modelId: 1 } });
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: 'd;c', rtspUrl: 'file:///etc/passwd', modelUrl: 'x', modelName: 'x', modelId: 1 } });
    cms.send(subscribe('display-x;cam-x', { cropX1: 100, cropY1: 0, cropX2: 50, cropY2: 10 }));
    cms.send({ type: 'setSessionId', payload: {} });
    const asked = Date.now();
    cms.send({ type: 'requestState' });
    const report = await cms.waitFor((m) => m.type === 'stateReport', 3000, asked);
    assert.deepEqual(report.cameraConnections, [], 'invalid subscriptions are answered by their absence');
    assert.equal(cms.socket.readyState, cms.socket.OPEN);
  } finally {
    await cms.close();
  }
});

test('subscribes past MAX_STREAMS are refused: absent from the state report, counted in the metrics', async () => {
  const cms = await CmsClient.connect(wsUrl());
  const ids = [1, 2, 3, 4, 5].map((i) => `display-cap;cam-${i}`);
  try {
    for (const id of ids) cms.send(subscribe(id));
    const asked = Date.now();
    cms.send({ type: 'requestState' });
    const report = await cms.waitFor((m) => m.type === 'stateReport', 3000, asked);
    const served = report.cameraConnections.map((c: { subscriptionIdentifier: string }) => c.subscriptionIdentifier);
    assert.deepEqual(served.sort(), ids.slice(0, 4), 'the fifth is refused (maxStreams 4)');
    const text = await (await request(`${relay.url}/metrics`)).body.text();
    assert.match(text, /relay_subscriptions 4/);
    assert.match(text, /relay_subscriptions_refused_total\{reason="max_streams"\} 1/);
  } finally {
    for (const id of ids) cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: id } });
    await cms.close();
  }
});

test('infer errors (429 with Retry-After) back the subscription off; it recovers when infer does', async () => {
  const cms = await CmsClient.connect(wsUrl());
  try {
    stub.failWith = 429;
    cms.send(subscribe('display-e;cam-1'));
    await new Promise((r) => setTimeout(r, 2500));
    const sub = relay.registry.get('display-e;cam-1')!;
    const refused = sub.group.stats.errors.STUB_FAILURE ?? 0;
    assert.ok(refused >= 1 && refused <= 4, `Retry-After: 1 s spaces the retries (${refused} in 2.5 s)`);
    assert.ok(sub.group.stats.framesDropped > 0, 'frames were dropped, not queued');
    stub.failWith = undefined;
    await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-e;cam-1', 10_000);
  } finally {
    stub.failWith = undefined;
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-e;cam-1' } });
    await cms.close();
  }
});

test('subscriptions outlive a dropped CMS connection for the grace period, then are cleaned up', async () => {
  const cms = await CmsClient.connect(wsUrl());
  cms.send(subscribe('display-g;cam-1'));
  await cms.waitFor((m) => m.type === 'imageDetection', 10_000);
  await cms.close();
  const again = await CmsClient.connect(wsUrl());
  const report = await again.waitFor((m) => m.type === 'stateReport', 3000);
  assert.equal(report.cameraConnections[0]?.subscriptionIdentifier, 'display-g;cam-1', 'reported to the new connection');
  await again.close();
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(relay.registry.list().length, 0, 'cleaned up after the grace period');
  assert.equal(relay.hub.readers().length, 0);
});

test('a snapshot camera that answers 404 is offline; a real fixture photo goes through', async (t) => {
  const cms = await CmsClient.connect(wsUrl());
  try {
    cms.send(subscribe('display-m;cam-m', { snapshotUrl: snapshotUrl.replace('/snap.jpg', '/missing') }));
    await new Promise((r) => setTimeout(r, 800));
    cms.send({ type: 'requestState' });
    const report = await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.length === 1, 3000, Date.now() - 100);
    assert.equal(report.cameraConnections[0].online, false);
    const path = fixture(t, 'images/traffic_cam_30s.jpg');
    if (!path) return;
    photo = await readFile(path);
    const since = Date.now();
    cms.send(subscribe('display-m;cam-2'));
    await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-m;cam-2', 10_000, since);
    assert.ok(stub.requests.at(-1)!.bytes > 10_000);
  } finally {
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-m;cam-m' } });
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-m;cam-2' } });
    await cms.close();
  }
});
