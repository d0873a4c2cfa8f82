/**
 * Vehicle visits end to end (issue 11): a pump clip rendered at test time (exact ground truth)
 * runs through a snapshot camera and an RTSP camera at the same time, each with two displays
 * (the full frame, and the left pump's crop), through the real relay and the real infer
 * (YOLO11n at 320 + a cropped colour classifier, initial record in PostgreSQL). Per display:
 * one imageDetection per visit, soon after the car stops; one initial-record row per visit.
 * Then a short check that `tracking: {enabled: false}` gives back one event per frame.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay, type Relay } from '@detector-worker/relay/server';
import { fixture, fixturesRequired, requireService } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';
import { startRtspServer, type RtspTestServer } from '@detector-worker/testkit/rtsp-server';
import { postgresForTests, type PostgresServerConfig, type TestServer } from '@detector-worker/testkit/servers';
import { CmsClient, type CmsMessage } from './support/cms-client.js';
import { PUMP_ZONES, ffmpegAvailable, pumpScene, renderPumpClip, startSnapshotCamera, visitsIn, type Box, type RenderedClip, type Visit } from './support/pump-clip.js';

const run = randomBytes(4).toString('hex');
const schema = `dw_visits_${run}`;
const DETECTOR = 'yolo11n_int8_320.onnx';
const CLASSIFIER = 'car_color_cls.onnx';
/** An event must reach the CMS this soon after its car stopped. */
const MAX_DELAY_S = 5;
/**
 * ...or this soon after the camera came up, for a car parked before: a still scene is sampled
 * every IDLE_DETECT_INTERVAL_MS (3 s) until a track starts, and a car never seen "well" (score
 * ≥ 0.6) waits maxWaitSec (2 s) for its first run.
 */
const MAX_FIRST_SIGHT_DELAY_S = 10;

let work: string;
let clip: RenderedClip | undefined;
let pgServer: TestServer<PostgresServerConfig> | undefined;
let db: pg.Client | undefined;
let infer: RunningInfer | undefined;
let relay: Relay | undefined;
let archive: string | undefined;
let perFrameArchive: string | undefined;
let skipReason: { service: string; reason: string } | undefined;
const relayLogs: Array<Record<string, unknown>> = [];

/** The pipeline of these tests: detector -> cropped colour classifier, initial record for cars. */
async function pipelineArchive(name: string, pg: PostgresServerConfig, tracking?: object): Promise<string | undefined> {
  const t = { skip: () => undefined };
  const detector = fixture(t, `models/${DETECTOR}`);
  const classifier = fixture(t, `models/${CLASSIFIER}`);
  if (!detector || !classifier) return undefined;
  return writeMpta(work, `${name}.mpta`, {
    pipeline: {
      pipeline: {
        modelId: 'vehicle_det', modelFile: DETECTOR, minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'], multiClass: true, crop: false,
        ...(tracking ? { tracking } : {}),
        branches: [{ modelId: 'car_color', modelFile: CLASSIFIER, crop: true, cropClass: 'car', resizeTarget: [224, 224], triggerClasses: ['car'], minConfidence: 0.2, parallel: true }],
      },
      postgresql: { host: pg.host, port: pg.port, database: pg.database, username: pg.user, password: pg.password ?? '' },
      initialRecord: { table: `${schema}.${name.replace(/-/g, '_')}`, triggerClasses: ['car'] },
    },
    files: { [DETECTOR]: await readFile(detector), [CLASSIFIER]: await readFile(classifier) },
  });
}

before(async () => {
  if (!ffmpegAvailable()) {
    if (fixturesRequired()) throw new Error('ffmpeg is not installed (apt-get install -y ffmpeg)');
    skipReason = { service: 'ffmpeg', reason: 'not installed (apt-get install -y ffmpeg)' };
    return;
  }
  work = await mkdtemp(join(tmpdir(), 'relay-visits-'));
  try {
    pgServer = await postgresForTests();
    db = new pg.Client({ connectionString: pgServer.url });
    await db.connect();
  } catch (err) {
    skipReason = { service: 'PostgreSQL', reason: (err as Error).message };
    return;
  }
  // YOLO11n at 320 scores the parked red roadster 0.44–0.55 on the RTSP camera's frames (the
  // full 1280x720 frame shrunk to 320 by the relay): below the default 0.5 / 0.6, so it would
  // never become a track. The synthetic clips show no false box from 0.3 up.
  archive = await pipelineArchive('visits', pgServer.config, { highScore: 0.4, newTrackScore: 0.4 });
  perFrameArchive = await pipelineArchive('per-frame', pgServer.config, { enabled: false });
  if (!archive) return;
  clip = await renderPumpClip(pumpScene(), join(work, 'clip'));
  infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'silent' }));
  const logStream = { write: (line: string) => { if (relayLogs.length < 5000) relayLogs.push(JSON.parse(line) as Record<string, unknown>); } };
  relay = await startRelay(
    { ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: infer.url, heartbeatIntervalMs: 500, reconnectIntervalSec: 0.25, maxBackoffSec: 1, watchdogMs: 5000, targetFps: 2 },
    pino({ level: 'debug' }, logStream),
  );
});

after(async () => {
  await relay?.close();
  await infer?.close();
  await db?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await db?.end().catch(() => undefined);
  await pgServer?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Display {
  id: string;
  region: Box;
  crop?: Box;
  /** Wall time (ms) of clip time 0 on this display's camera. */
  clipStart: number;
}

/**
 * What the CMS expects to hear about: a vehicle that came to a stop in the display's region.
 * A car driving past on the road (kind 'pass') is no arrival at the pump.
 */
const expectedVisits = (d: Display): Visit[] => visitsIn(clip!.scene, d.region).filter((v) => v.kind === 'stop');

/** Clip seconds within which the event of `v` is due: from its arrival to its stop plus MAX_DELAY_S (or the camera coming up plus MAX_FIRST_SIGHT_DELAY_S). */
function window(v: Visit, d: Display, onlineAt: number): [number, number] {
  const onlineClip = (onlineAt - d.clipStart) / 1000;
  const stop = v.stoppedAt ?? v.start;
  return [v.start - 1, stop > onlineClip ? stop + MAX_DELAY_S : onlineClip + MAX_FIRST_SIGHT_DELAY_S];
}

function checkDisplay(cms: CmsClient, d: Display, label: string): string[] {
  const problems: string[] = [];
  const events = cms.messages.filter((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === d.id);
  const online = cms.messages.find((m) => m.type === 'stateReport' && m.cameraConnections.some((c: any) => c.subscriptionIdentifier === d.id && c.online));
  const onlineAt = online?.receivedAt ?? d.clipStart;
  const expected = expectedVisits(d);
  const at = (m: CmsMessage) => Math.round(((m.receivedAt as number) - d.clipStart) / 100) / 10;
  const summary = `${label} ${d.id}: expected ${expected.map((v) => `${v.vehicleId}@${v.stoppedAt}`).join(', ')}; got ${events.map((m) => `${at(m)}s ${JSON.stringify(m.data.detection)}`).join(', ')}`;
  if (events.length !== expected.length) problems.push(`${summary}: ${events.length} events for ${expected.length} visits`);
  const unmatched = [...events];
  for (const v of expected) {
    const [from, to] = window(v, d, onlineAt);
    const i = unmatched.findIndex((m) => at(m) >= from && at(m) <= to);
    if (i < 0) problems.push(`${summary}: no event for ${v.vehicleId} between ${from.toFixed(1)} s and ${to.toFixed(1)} s`);
    else unmatched.splice(i, 1);
  }
  for (const m of unmatched) problems.push(`${summary}: an event at ${at(m)} s belongs to no visit (a second event for a parked car?)`);
  return problems;
}

test('pump clip, snapshot and RTSP cameras, full frame and left pump: one event per visit, one row per visit, soon after the stop', async (t) => {
  if (skipReason) return requireService(t, skipReason.service, skipReason.reason);
  if (!archive || !clip || !relay || !db) return t.skip('fixtures missing');
  const scene = clip.scene;
  const snapshot = await startSnapshotCamera(clip);
  let rtsp: RtspTestServer | undefined;
  const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/`);
  const subscribe = (d: Display, source: Record<string, unknown>) => cms.send({
    type: 'subscribe',
    payload: {
      subscriptionIdentifier: d.id, ...source, modelUrl: `file://${archive}`, modelName: 'Vehicles', modelId: 'visits',
      ...(d.crop ? { cropX1: d.crop[0], cropY1: d.crop[1], cropX2: d.crop[2], cropY2: d.crop[3] } : {}),
    },
  });
  try {
    // Both cameras start the clip now: the snapshot camera replays it in real time, the RTSP
    // server streams the mp4 as it is (H.264, keyframe every 2 s) in real time.
    rtsp = await startRtspServer(clip.mp4!, { copy: true });
    const rtspStart = Date.now();
    snapshot.restart();
    const snapStart = Date.now();
    const displays: Array<Display & { source: Record<string, unknown> }> = [
      { id: 'snap-full;cam-snap', region: PUMP_ZONES.full, clipStart: snapStart, source: { snapshotUrl: snapshot.url, snapshotInterval: 500 } },
      { id: 'snap-left;cam-snap', region: PUMP_ZONES.leftHalf, crop: PUMP_ZONES.leftHalf, clipStart: snapStart, source: { snapshotUrl: snapshot.url, snapshotInterval: 500 } },
      { id: 'rtsp-full;cam-rtsp', region: PUMP_ZONES.full, clipStart: rtspStart, source: { rtspUrl: rtsp.url } },
      { id: 'rtsp-left;cam-rtsp', region: PUMP_ZONES.leftHalf, crop: PUMP_ZONES.leftHalf, clipStart: rtspStart, source: { rtspUrl: rtsp.url } },
    ];
    for (const d of displays) subscribe(d, d.source);

    // Watch the whole clip (plus time for the last events), then stop before the RTSP loop restarts it.
    const end = Math.min(snapStart, rtspStart) + (scene.durationS + 1.5) * 1000;
    while (Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    // What the four groups asked of infer (parked and empty scenes are gated: a detect frame per
    // idle interval), read before the unsubscribes end the groups.
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    const detects = Number(/relay_visit_events_total\{event="detect"\} (\d+)/.exec(metrics)?.[1] ?? NaN);
    t.diagnostic(`detect requests of the four groups over the ${scene.durationS} s clip: ${detects} (every frame at 2 fps: about ${4 * 2 * scene.durationS})`);
    for (const d of displays) cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: d.id } });

    const problems = displays.flatMap((d) => checkDisplay(cms, d, d.id.startsWith('snap') ? 'snapshot' : 'RTSP'));
    const visitLogs = relayLogs.filter((l) => /visit|full run/.test(String(l.msg))).map((l) => `${((l.time as number) - snapStart) / 1000}s ${l.msg} ${String(l.group).replace(/\|visits\|.*$/, '')} ${l.visit ?? ''} track ${l.trackId} ${l.why ?? l.reason ?? ''}`);
    assert.deepEqual(problems, [], `\n${problems.join('\n')}\nrelay:\n${visitLogs.join('\n')}`);

    // Each group (one display each) wrote one initial record per visit: the visit id is the
    // request id, so a retried full run does not write twice.
    const rows = await db.query(`SELECT display_id, count(*)::int AS n FROM "${schema}".visits GROUP BY display_id`);
    const byDisplay = Object.fromEntries(rows.rows.map((r: { display_id: string; n: number }) => [r.display_id, r.n]));
    assert.deepEqual(byDisplay, Object.fromEntries(displays.map((d) => [d.id.split(';')[0], expectedVisits(d).length])));
  } finally {
    await cms.close();
    await snapshot.close();
    await rtsp?.stop();
  }
});

test('tracking off in pipeline.json: one event per frame with a detection, no visits', async (t) => {
  if (skipReason) return requireService(t, skipReason.service, skipReason.reason);
  if (!perFrameArchive || !clip || !relay) return t.skip('fixtures missing');
  // The first seconds of the clip: only the parked car, seen in every frame.
  const snapshot = await startSnapshotCamera({ ...clip, frameCount: 40 });
  const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/`);
  const id = 'per-frame;cam-still';
  try {
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: id, snapshotUrl: snapshot.url, snapshotInterval: 500, modelUrl: `file://${perFrameArchive}`, modelName: 'Vehicles', modelId: 'per-frame' } });
    const events = () => cms.messages.filter((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === id);
    const deadline = Date.now() + 30_000;
    while (events().length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const stats = relay.registry.get(id)!.group.stats;
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: id } });
    const got = events();
    assert.ok(got.length >= 6, `${got.length} events in 30 s`);
    assert.equal(new Set(got.map((m) => m.timestamp)).size, got.length, 'one event per frame');
    for (const m of got) assert.equal(m.data.detection.class, 'car');
    assert.equal(stats.visitsStarted, 0);
    assert.equal(stats.fullRuns, 0);
    // Every answered frame shows the parked car, so every answer is an event (the probe frame, sent as the detect stage, is sent again whole).
    const answered = stats.framesSent - Object.values(stats.errors).reduce((a, b) => a + b, 0);
    assert.ok(got.length >= answered - 2 && got.length <= answered, `${got.length} events for ${answered} answered frames`);
  } finally {
    await cms.close();
    await snapshot.close();
  }
});
