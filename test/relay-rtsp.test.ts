/**
 * Relay + real infer + a real RTSP server streaming the fixture video: detections of real
 * cars reach the CMS, two displays on one camera open exactly one ffmpeg process, the last
 * unsubscribe ends it, and a camera outage flips `online` to false and back with
 * detections resuming.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay, type Relay } from '@detector-worker/relay/server';
import { fixture, fixturesRequired, requireService } from '@detector-worker/testkit/fixtures';
import { writeStandardMpta } from '@detector-worker/testkit/mpta';
import { CmsClient } from './support/cms-client.js';
import { startRtspServer, type RtspTestServer } from '@detector-worker/testkit/rtsp-server';

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
let work: string;
let infer: RunningInfer;
let relay: Relay;
let rtsp: RtspTestServer;
let archive: string | undefined;

/** ffmpeg children reading RTSP (the test's RTSP source is an ffmpeg child too, without that flag). */
function ffmpegChildren(): number {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'ffmpeg.*-rtsp_transport tcp']).toString().trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

before(async () => {
  const t = { skip: () => undefined };
  if (!hasFfmpeg) {
    if (fixturesRequired()) throw new Error('ffmpeg is not installed (apt-get install -y ffmpeg)');
    return;
  }
  const video = fixture(t, 'video/traffic_640x360.mp4');
  if (!video) return;
  work = await mkdtemp(join(tmpdir(), 'relay-rtsp-'));
  archive = await writeStandardMpta(t, work, 'cars.mpta');
  rtsp = await startRtspServer(video);
  infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'silent' }));
  relay = await startRelay(
    { ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: infer.url, heartbeatIntervalMs: 500, reconnectIntervalSec: 0.25, maxBackoffSec: 1, watchdogMs: 4000, targetFps: 2 },
    pino({ level: 'silent' }),
  );
});

after(async () => {
  await relay?.close();
  await infer?.close();
  await rtsp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('RTSP camera: detections, one ffmpeg per camera, outage and recovery, last unsubscribe ends ffmpeg', async (t) => {
  if (!hasFfmpeg) return requireService(t, 'ffmpeg', 'not installed (apt-get install -y ffmpeg)');
  if (!archive || !relay) return t.skip('fixtures missing');
  const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/`);
  const sub = (id: string) => ({ type: 'subscribe', payload: { subscriptionIdentifier: id, rtspUrl: rtsp.url, modelUrl: `file://${archive}`, modelName: 'Cars', modelId: 'cars' } });
  try {
    cms.send(sub('display-1;street'));
    cms.send(sub('display-2;street'));
    await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.length === 2 && m.cameraConnections.every((c: any) => c.online), 30_000);
    const d1 = await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-1;street', 60_000);
    await cms.waitFor((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === 'display-2;street', 30_000);
    assert.ok(['car', 'truck', 'bus'].includes(d1.data.detection.class), JSON.stringify(d1.data.detection));
    assert.equal(d1.data.modelId, 'cars');
    assert.equal(relay.hub.processCount(), 1);
    assert.equal(ffmpegChildren(), 1, 'exactly one ffmpeg child for two displays on one camera');
    assert.equal(rtsp.playing(), 1, 'the camera sees one client');

    // Outage: the RTSP server goes away, then comes back on the same port.
    await rtsp.stop();
    const down = Date.now();
    await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.length === 2 && m.cameraConnections.every((c: any) => !c.online), 30_000, down);
    await rtsp.start();
    const up = Date.now();
    await cms.waitFor((m) => m.type === 'stateReport' && m.cameraConnections.every((c: any) => c.online), 30_000, up);
    await cms.waitFor((m) => m.type === 'imageDetection', 60_000, up);
    assert.ok(relay.hub.readers()[0]!.stats.reconnects >= 1);

    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-1;street' } });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(relay.hub.processCount(), 1, 'still needed by display-2');
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: 'display-2;street' } });
    for (let i = 0; i < 60 && ffmpegChildren() > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(relay.hub.processCount(), 0);
    assert.equal(ffmpegChildren(), 0, 'the last unsubscribe ended ffmpeg');
  } finally {
    await cms.close();
  }
});
