/**
 * Idle gating end to end (issue 13): a generated pump clip that stays empty for 20 s, then one
 * car drives in and stops, replayed by a snapshot camera polled every 500 ms, through the real
 * relay and the real infer (YOLO11n at 320, detector only). While nothing is tracked and
 * nothing moves, the group sends a detect frame only every IDLE_DETECT_INTERVAL_MS and skips the
 * rest; the car still wakes it (motion) and its imageDetection arrives soon after it stops.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay, type Relay } from '@detector-worker/relay/server';
import { fixture, fixturesRequired, requireService } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';
import { CmsClient } from './support/cms-client.js';
import { PUMP_ZONES, ffmpegAvailable, mostlyEmptyScene, renderPumpClip, startSnapshotCamera, visitsIn, type RenderedClip } from './support/pump-clip.js';

const DETECTOR = 'yolo11n_int8_320.onnx';
const IDLE_INTERVAL_MS = 3000;
const SNAPSHOT_INTERVAL_MS = 500;
/** The car's event must reach the CMS this soon after it stopped. */
const MAX_DELAY_S = 5;
/**
 * Detect requests allowed over the empty stretch (~40 frames at 2 fps): one per idle interval
 * (~7), plus the first frames sent before the first answer says the pipeline tracks.
 */
const MAX_EMPTY_DETECTS = 10;

let work: string;
let clip: RenderedClip | undefined;
let infer: RunningInfer | undefined;
let relay: Relay | undefined;
let archive: string | undefined;
let skipReason: { service: string; reason: string } | undefined;
const relayLogs: Array<Record<string, unknown>> = [];

before(async () => {
  if (!ffmpegAvailable()) {
    if (fixturesRequired()) throw new Error('ffmpeg is not installed (apt-get install -y ffmpeg)');
    skipReason = { service: 'ffmpeg', reason: 'not installed (apt-get install -y ffmpeg)' };
    return;
  }
  work = await mkdtemp(join(tmpdir(), 'relay-idle-'));
  const detector = fixture({ skip: () => undefined }, `models/${DETECTOR}`);
  if (!detector) return;
  archive = await writeMpta(work, 'idle.mpta', {
    pipeline: {
      pipeline: {
        modelId: 'vehicle_det', modelFile: DETECTOR, minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'], multiClass: true, crop: false,
        // As in relay-visits: YOLO11n at 320 scores some pasted cars 0.44–0.55.
        tracking: { highScore: 0.4, newTrackScore: 0.4 },
      },
    },
    files: { [DETECTOR]: await readFile(detector) },
  });
  // One period of 52 s: the car enters at 20 s, stops at 23 s, stands until 29 s. Rendered at
  // 4 fps: the camera is polled at 2 fps, and fewer frames render faster.
  clip = await renderPumpClip(mostlyEmptyScene({ durationS: 52, everyS: 52, fps: 4 }), join(work, 'clip'), { mp4: false });
  infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'silent' }));
  const logStream = { write: (line: string) => { if (relayLogs.length < 5000) relayLogs.push(JSON.parse(line) as Record<string, unknown>); } };
  // The camera keeps its full rate here, so what is measured is the frame group's own gating
  // (slowing the camera itself: relay-keyframes.test.ts and bench:idle-decode).
  relay = await startRelay(
    { ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: infer.url, heartbeatIntervalMs: 500, reconnectIntervalSec: 0.25, maxBackoffSec: 1, watchdogMs: 5000, targetFps: 2, idleDetectIntervalMs: IDLE_INTERVAL_MS, idleSlowCamera: false },
    pino({ level: 'debug' }, logStream),
  );
});

after(async () => {
  await relay?.close();
  await infer?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Sample { clipS: number; seen: number; idle: number; detects: number; sent: number }

test('empty forecourt: detect requests drop to the idle rate; the arriving car still gets its event within 5 s of stopping', async (t) => {
  if (skipReason) return requireService(t, skipReason.service, skipReason.reason);
  if (!archive || !clip || !relay) return t.skip(`fixture models/${DETECTOR} missing`);
  const scene = clip.scene;
  const car = scene.vehicles[0];
  assert.ok(car && scene.vehicles.length === 1, 'one car in the clip');
  const enterAt = car.keyframes[0]!.t;
  const visits = visitsIn(scene, PUMP_ZONES.full).filter((v) => v.kind === 'stop');
  assert.equal(visits.length, 1);
  const visit = visits[0]!;
  const stoppedAt = visit.stoppedAt!;

  const snapshot = await startSnapshotCamera(clip);
  const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/`);
  const id = 'idle-full;cam-idle';
  const samples: Sample[] = [];
  try {
    snapshot.restart();
    const clipStart = Date.now();
    cms.send({ type: 'subscribe', payload: { subscriptionIdentifier: id, snapshotUrl: snapshot.url, snapshotInterval: SNAPSHOT_INTERVAL_MS, modelUrl: `file://${archive}`, modelName: 'Vehicles', modelId: 'idle' } });
    const clipNow = () => (Date.now() - clipStart) / 1000;
    const until = stoppedAt + MAX_DELAY_S + 0.5;
    while (clipNow() < until) {
      const group = relay.registry.get(id)?.group;
      if (group) {
        const s = group.stats;
        samples.push({ clipS: clipNow(), seen: s.framesSeen, idle: s.framesIdle, detects: s.detectRequests, sent: s.framesSent });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    cms.send({ type: 'unsubscribe', payload: { subscriptionIdentifier: id } });

    // Stats at the last sample before a clip time (zeros before the group existed).
    const at = (clipS: number): Sample => samples.filter((s) => s.clipS <= clipS).at(-1) ?? { clipS, seen: 0, idle: 0, detects: 0, sent: 0 };
    const empty = at(enterAt);
    const firstDetect = samples.find((s) => s.detects > 0);
    const settled = firstDetect ? at(firstDetect.clipS + 1) : empty;
    const quiet = { frames: empty.seen - settled.seen, detects: empty.detects - settled.detects, idle: empty.idle - settled.idle, seconds: enterAt - settled.clipS };
    const end = samples.at(-1)!;
    const busy = { frames: end.seen - empty.seen, detects: end.detects - empty.detects, idle: end.idle - empty.idle };
    const events = cms.messages.filter((m) => m.type === 'imageDetection' && m.subscriptionIdentifier === id);
    const delays = events.map((m) => (m.receivedAt - clipStart) / 1000 - stoppedAt);
    t.diagnostic(`empty 0–${enterAt} s: ${empty.seen} frames, ${empty.detects} detect requests, ${empty.idle} idle frames; ` +
      `after the first answer (${settled.clipS.toFixed(1)}–${enterAt} s): ${quiet.frames} frames, ${quiet.detects} detect requests (one per ${(quiet.seconds / Math.max(1, quiet.detects)).toFixed(1)} s), ${quiet.idle} idle`);
    t.diagnostic(`car ${enterAt}–${until.toFixed(1)} s: ${busy.frames} frames, ${busy.detects} detect requests, ${busy.idle} idle; ` +
      `events at ${delays.map((d) => `${d >= 0 ? '+' : ''}${d.toFixed(1)} s`).join(', ') || 'none'} from the stop at ${stoppedAt} s`);

    const visitLogs = () => relayLogs.filter((l) => /visit|full run|tracking/.test(String(l.msg))).map((l) => `${(((l.time as number) - clipStart) / 1000).toFixed(1)}s ${l.msg} ${l.visit ?? ''} ${l.why ?? l.reason ?? ''}`).join('\n');
    assert.ok(empty.idle > 0, `no idle frame while empty: ${JSON.stringify(empty)}`);
    assert.ok(empty.detects <= MAX_EMPTY_DETECTS, `${empty.detects} detect requests over ${empty.seen} empty frames (at most ${MAX_EMPTY_DETECTS})`);
    assert.ok(empty.seen >= 2 * (enterAt - 2), `the camera delivered only ${empty.seen} frames in ${enterAt} s`);
    // One detect per idle interval after the first answer: ~6 in 18 s (one more for a boundary).
    assert.ok(quiet.detects <= Math.ceil((quiet.seconds * 1000) / IDLE_INTERVAL_MS) + 1, `${quiet.detects} detect requests in ${quiet.seconds.toFixed(1)} quiet seconds`);
    // The moving car woke the group: frames go at full rate again.
    assert.ok(busy.detects >= busy.frames / 2, `${busy.detects} detect requests for ${busy.frames} frames while the car was there`);
    assert.equal(events.length, 1, `one event for the car; got ${events.length}\nrelay:\n${visitLogs()}`);
    assert.ok(delays[0]! >= visit.start - 1 - stoppedAt && delays[0]! <= MAX_DELAY_S, `event ${delays[0]!.toFixed(1)} s after the stop\nrelay:\n${visitLogs()}`);
    assert.equal(events[0]!.data.detection.class, 'car');
  } finally {
    await cms.close();
    await snapshot.close();
  }
});
