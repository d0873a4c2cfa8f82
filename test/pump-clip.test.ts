/**
 * Synthetic pump clips: the pure ground truth (positions, stops, visits, ffmpeg expressions,
 * snapshot frame choice), the loopback snapshot camera, and one real render whose frames the
 * real YOLOv8n detector must find exactly where the ground truth says.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer } from '@detector-worker/infer/start';
import { fixture, requireService } from '@detector-worker/testkit/fixtures';
import { writeStandardMpta } from '@detector-worker/testkit/mpta';
import {
  PUMP_LAYOUT, PUMP_ZONES, VEHICLES, buildFilterGraph, ffmpegAvailable, forecourtBackground, frameIndexAt, keyframeExpr,
  mostlyEmptyScene, pumpScene, pumpStand, renderPumpClip, startSnapshotCamera, stopsOf, vehicleSize, vehicleStateAt,
  vehiclesAt, visitPath, visitsIn, type Box, type Scene, type Vehicle,
} from './support/pump-clip.js';

let work: string;
before(async () => { work = await mkdtemp(join(tmpdir(), 'pump-clip-')); });
after(async () => { await rm(work, { recursive: true, force: true }); });

const summary = (scene: Scene, zone?: Box) => visitsIn(scene, zone).map((v) => [v.vehicleId, v.start, v.end, v.stoppedAt, v.kind]);

describe('ground truth (pure)', () => {
  const frame = { width: 1280, height: 720 };
  const car: Vehicle = {
    id: 'x', source: { image: 'img.jpg', box: [100, 100, 300, 200] }, width: 201,
    keyframes: [{ t: 1, x: -200, y: 500 }, { t: 3, x: 200, y: 500 }, { t: 5, x: 200, y: 500 }, { t: 6, x: 200, y: 500 }, { t: 8, x: 1280, y: 500 }],
  };

  test('sizes are even and keep the crop aspect', () => {
    assert.deepEqual(vehicleSize(car), { w: 200, h: 100 });
    assert.deepEqual(vehicleSize({ source: VEHICLES.whiteSedan, width: 480 }), { w: 480, h: 238 });
  });

  test('boxes interpolate linearly between keyframes, clip to the frame, and vanish off the timeline', () => {
    assert.equal(vehicleStateAt(frame, car, 0.9), null);
    assert.equal(vehicleStateAt(frame, car, 1), null, 'fully off screen on the left');
    const entering = vehicleStateAt(frame, car, 1.5)!;
    assert.deepEqual(entering.box, [-100, 500, 100, 600]);
    assert.deepEqual(entering.visibleBox, [0, 500, 100, 600]);
    assert.equal(entering.visibleFraction, 0.5);
    assert.deepEqual(entering.anchor, [50, 600]);
    assert.equal(entering.moving, true);
    const standing = vehicleStateAt(frame, car, 4)!;
    assert.deepEqual(standing.box, [200, 500, 400, 600]);
    assert.equal(standing.moving, false);
    assert.equal(vehicleStateAt(frame, car, 3)!.moving, false, 'a keyframe belongs to the segment it starts');
    assert.deepEqual(vehicleStateAt(frame, car, 7)!.box, [740, 500, 940, 600]);
    assert.equal(vehicleStateAt(frame, car, 8), null, 'gone off the right edge');
    assert.equal(vehicleStateAt(frame, car, 8.1), null);
    // Positions snap to even pixels like the overlay filter: 1/3 of the way is -66.67 → -68.
    assert.equal(vehicleStateAt(frame, car, 1 + 2 / 3)!.box[0], -68);
  });

  test('stops merge consecutive still segments', () => {
    assert.deepEqual(stopsOf(frame, car), [{ from: 3, to: 6, box: [200, 500, 400, 600] }]);
    assert.deepEqual(stopsOf(frame, { ...car, keyframes: [{ t: 0, x: 0, y: 0 }, { t: 9, x: 10, y: 0 }] }), []);
  });

  test('visits: presence needs half the box on screen and the anchor in the zone for minDwellS', () => {
    const scene: Scene = { ...frame, durationS: 10, fps: 10, background: forecourtBackground(), vehicles: [car] };
    // Half on screen from t=1.5 (box x -100) until x passes 1180 at t = 6 + 980/540 ≈ 7.81.
    assert.deepEqual(visitsIn(scene).map((v) => [v.start, v.end, v.stoppedAt, v.kind]), [[1.5, 7.9, 3, 'stop']]);
    // Left quarter: the anchor (x + 100) stays inside up to x = 220, passed just after 6.0.
    assert.deepEqual(visitsIn(scene, [0, 0, 320, 720]).map((v) => [v.start, v.end]), [[1.5, 6.1]]);
    assert.deepEqual(visitsIn(scene, [0, 0, 320, 720], { minDwellS: 5 }), []);
    // Right quarter: only the drive-out crosses it, too briefly for the default 2 s.
    assert.deepEqual(visitsIn(scene, [960, 0, 1280, 720]), []);
    const pass = visitsIn(scene, [960, 0, 1280, 720], { minDwellS: 0.1 });
    assert.equal(pass.length, 1);
    assert.equal(pass[0]!.kind, 'pass');
    assert.equal(pass[0]!.stoppedAt, null);
    assert.deepEqual(visitsIn(scene, [0, 0, 1280, 360]), [], 'the anchor never enters the upper half');
  });

  test('the pump preset: the visits its comment promises', () => {
    const scene = pumpScene();
    assert.deepEqual(summary(scene, PUMP_ZONES.full), [
      ['B', 0, 60, 0, 'stop'], ['A', 6.3, 30.5, 8, 'stop'], ['C', 35.6, 39.9, null, 'pass'], ['D', 41.3, 60, 43, 'stop'],
    ]);
    assert.deepEqual(summary(scene), summary(scene, PUMP_ZONES.full));
    assert.deepEqual(summary(scene, PUMP_ZONES.leftHalf), [['A', 6.3, 28.9, 8, 'stop'], ['D', 41.3, 60, 43, 'stop']]);
    assert.deepEqual(summary(scene, PUMP_ZONES.lowerHalf), [['B', 0, 60, 0, 'stop'], ['A', 6.3, 30.5, 8, 'stop'], ['D', 41.3, 60, 43, 'stop']]);
    // A and D stand at the same pump: same bottom-centre.
    const a = visitsIn(scene).find((v) => v.vehicleId === 'A')!.stopBox!;
    const d = visitsIn(scene).find((v) => v.vehicleId === 'D')!.stopBox!;
    assert.deepEqual(a, [80, 440, 560, 678]);
    assert.equal((a[0] + a[2]) / 2, (d[0] + d[2]) / 2);
    assert.equal(a[3], d[3]);
    // No two vehicles ever overlap, so every fully visible one is unoccluded.
    for (let n = 0; n < 600; n++) {
      const states = vehiclesAt(scene, n / 10, 0.01);
      for (const p of states) for (const q of states) {
        if (p.id < q.id) assert.ok(p.box[2] <= q.box[0] || q.box[2] <= p.box[0] || p.box[3] <= q.box[1] || q.box[3] <= p.box[1], `${p.id}/${q.id} overlap at ${n / 10}`);
      }
    }
  });

  test('the mostly-empty preset: one stop visit per period, nothing else', () => {
    const scene = mostlyEmptyScene();
    assert.deepEqual(summary(scene, PUMP_ZONES.full), [['car1', 25.3, 35.5, 27, 'stop'], ['car2', 85.3, 95.5, 87, 'stop']]);
    assert.deepEqual(summary(scene, PUMP_ZONES.leftHalf), [['car1', 25.3, 33.9, 27, 'stop'], ['car2', 85.3, 93.9, 87, 'stop']]);
    assert.equal(vehiclesAt(scene, 10).length + vehiclesAt(scene, 60).length + vehiclesAt(scene, 119).length, 0);
    const long = mostlyEmptyScene({ durationS: 600, everyS: 120, fps: 5 });
    assert.equal(visitsIn(long, PUMP_ZONES.leftHalf).length, 5);
    assert.equal(long.fps, 5);
    assert.throws(() => mostlyEmptyScene({ everyS: 10 }), /at least 12/);
  });

  test('visitPath enters and leaves fully off screen', () => {
    const k = visitPath({ x: 100, y: 400, width: 300, frameWidth: 1280, from: 'right', to: 'left', enterAt: 1, stopAt: 2, leaveAt: 5, goneAt: 6 });
    assert.deepEqual(k, [{ t: 1, x: 1280, y: 400 }, { t: 2, x: 100, y: 400 }, { t: 5, x: 100, y: 400 }, { t: 6, x: -300, y: 400 }]);
    assert.equal(visitPath({ x: 0, y: 0, width: 10, frameWidth: 100, from: 'left', enterAt: 0, stopAt: 1, leaveAt: 9 }).length, 3);
  });

  test('the ffmpeg position expressions equal the ground truth at every frame', () => {
    const evaluate = (expr: string, t: number): number => {
      const js = expr.replace(/\bif\(/g, 'iff(');
      // Same semantics as ffmpeg's if/lt/floor for these arithmetic-only expressions.
      const fn = new Function('t', 'iff', 'lt', 'floor', `return ${js};`) as (...a: unknown[]) => number;
      return fn(t, (c: number, a: number, b: number) => (c ? a : b), (a: number, b: number) => (a < b ? 1 : 0), Math.floor);
    };
    const scene = pumpScene();
    for (const v of [...scene.vehicles, car]) {
      const x = keyframeExpr(v.keyframes, 'x');
      const y = keyframeExpr(v.keyframes, 'y');
      const first = v.keyframes[0]!.t;
      const last = v.keyframes[v.keyframes.length - 1]!.t;
      for (let n = Math.ceil(first * 10); n <= last * 10; n++) {
        const t = n * 0.1; // ffmpeg computes t as pts * time_base, not n / 10
        const s = vehicleStateAt(scene, v, n / 10);
        if (!s) continue;
        assert.deepEqual([evaluate(x, t), evaluate(y, t)], [s.box[0], s.box[1]], `${v.id} at frame ${n}`);
      }
    }
  });

  test('the filter graph crops, scales and overlays each vehicle in its time window', () => {
    const plan = buildFilterGraph(pumpScene(), (p) => `/fx/${p}`);
    assert.deepEqual(plan.images, ['/fx/images/parking_plate_1080p.jpg', '/fx/images/car_rear_plate_1280.jpg', '/fx/images/dashcam_parked_1640x590.jpg', '/fx/images/dashcam_parked_1640x590.jpg']);
    assert.match(plan.filter, /\[1:v\]crop=1319:654:585:331,scale=480:238\[car0\]/);
    assert.match(plan.filter, /enable='between\(t,5,31\)'/);
    assert.match(plan.filter, /enable='between\(t,40,60\)'/);
    assert.match(plan.filter, /split=2\[vout\]\[jout\]$/);
    assert.equal(plan.filter.match(/drawbox/g)?.length, forecourtBackground().rects.length, 'background drawn once');
  });

  test('snapshot frame index: floor(elapsed * fps), held or looped past the end', () => {
    assert.equal(frameIndexAt(0, 10, 100, false), 0);
    assert.equal(frameIndexAt(0.29999, 10, 100, false), 2);
    assert.equal(frameIndexAt(0.3, 10, 100, false), 3);
    assert.equal(frameIndexAt(12, 10, 100, false), 99);
    assert.equal(frameIndexAt(12, 10, 100, true), 20);
    assert.equal(frameIndexAt(-1, 10, 100, true), 0);
    assert.throws(() => frameIndexAt(1, 10, 0, false));
  });
});

describe('snapshot camera (loopback)', () => {
  test('serves the frame for the time since start, holds the last one, 404s other paths', async () => {
    const dir = join(work, 'fake-frames');
    await mkdir(dir, { recursive: true });
    for (let n = 0; n < 5; n++) await writeFile(join(dir, `${n}.jpg`), `frame-${n}`);
    let clock = 1_000_000;
    const cam = await startSnapshotCamera({ frameCount: 5, fps: 2, framePath: (n) => join(dir, `${n}.jpg`) }, { now: () => clock });
    try {
      const get = async (url: string) => { const r = await request(url); return { status: r.statusCode, type: r.headers['content-type'], body: await r.body.text() }; };
      assert.deepEqual(await get(cam.url), { status: 200, type: 'image/jpeg', body: 'frame-0' });
      clock += 1600;
      assert.equal((await get(cam.url)).body, 'frame-3');
      clock += 60_000;
      assert.equal((await get(cam.url)).body, 'frame-4', 'holds the last frame');
      cam.restart();
      assert.equal((await get(cam.url)).body, 'frame-0');
      assert.equal((await get(cam.url.replace('snapshot.jpg', 'other'))).status, 404);
      assert.equal(cam.served(), 4);
    } finally {
      await cam.close();
    }
  });
});

/** 12 s with the default scene's vehicles, sizes and stands: every vehicle fully visible at some checked time. */
function checkScene(): Scene {
  const width = 1280;
  const { A, B, C, D } = PUMP_LAYOUT;
  return {
    width, height: 720, durationS: 12, fps: 10, background: forecourtBackground(),
    vehicles: [
      { id: 'A', ...A, keyframes: visitPath({ ...pumpStand(A), width: A.width, frameWidth: width, from: 'left', to: 'right', enterAt: 1, stopAt: 3, leaveAt: 6, goneAt: 8 }) },
      { id: 'B', source: B.source, width: B.width, keyframes: [{ t: 1, x: B.x, y: B.y }, { t: 12, x: B.x, y: B.y }] },
      { id: 'C', source: C.source, width: C.width, keyframes: [{ t: 2, x: width, y: C.y }, { t: 6, x: -C.width, y: C.y }] },
      { id: 'D', ...D, keyframes: visitPath({ ...pumpStand(D), width: D.width, frameWidth: width, from: 'left', enterAt: 8, stopAt: 10, leaveAt: 12 }) },
    ],
  };
}

describe('real render through YOLOv8n', () => {
  test('pasted vehicles are detected where the ground truth says; the empty background yields nothing', async (t) => {
    const photos = Object.values(VEHICLES).map((v) => fixture(t, v.image));
    if (photos.some((p) => !p)) return;
    if (!ffmpegAvailable()) return requireService(t, 'ffmpeg', 'renders the synthetic clip');
    const archive = await writeStandardMpta(t, work, 'pump.mpta');
    if (!archive) return;

    const scene = checkScene();
    const clip = await renderPumpClip(scene, join(work, 'check'));
    t.diagnostic(`rendered ${scene.durationS} s ${scene.width}x${scene.height}@${scene.fps} (mp4 + ${clip.frameCount} JPEGs) in ${clip.renderMs} ms`);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-count_frames', '-show_entries', 'stream=codec_name,pix_fmt,has_b_frames,nb_read_frames', '-of', 'json', clip.mp4!], { encoding: 'utf8' });
    assert.equal(probe.status, 0, probe.stderr);
    assert.deepEqual(JSON.parse(probe.stdout).streams[0], { codec_name: 'h264', pix_fmt: 'yuv420p', has_b_frames: 0, nb_read_frames: '120' });

    const infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'silent' }));
    try {
      const detect = async (time: number) => {
        const r = await request(`${infer.url}/v1/models/pump/infer?stage=detect&modelUrl=${encodeURIComponent(`file://${archive}`)}`, {
          method: 'POST', body: await readFile(clip.frameAt(time)), headers: { 'content-type': 'image/jpeg' },
        });
        const body = (await r.body.json()) as { result: { detections?: Array<{ class: string; confidence: number; bbox: Box }> } | null };
        assert.equal(r.statusCode, 200, JSON.stringify(body));
        return body.result?.detections ?? [];
      };
      assert.deepEqual(await detect(0), [], 'empty background');
      const seen = new Set<string>();
      // 4.0: A standing, B parked, C mid-lane; 7.0: A leaving, B; 11.0: B, D standing.
      for (const time of [4, 4.5, 7, 11]) {
        const dets = await detect(time);
        const truth = vehiclesAt(scene, time, 0.999);
        assert.ok(truth.length >= 2, `fully visible vehicles at ${time}`);
        for (const v of truth) {
          const hit = dets.find((d) => ['car', 'truck', 'bus'].includes(d.class) && d.bbox.every((c, i) => Math.abs(c - v.box[i]!) <= 25));
          assert.ok(hit, `${v.id} at ${time}: truth ${v.box}, detections ${JSON.stringify(dets)}`);
          const err = Math.max(...hit.bbox.map((c, i) => Math.abs(c - v.box[i]!)));
          t.diagnostic(`t=${time} ${v.id}: ${hit.class} ${hit.confidence.toFixed(2)}, worst edge off by ${err.toFixed(0)} px`);
          seen.add(v.id);
        }
        assert.equal(dets.length, truth.length, `one detection per vehicle at ${time}: ${JSON.stringify(dets)}`);
      }
      assert.deepEqual([...seen].sort(), ['A', 'B', 'C', 'D']);

      const cam = await startSnapshotCamera(clip);
      try {
        const r = await request(cam.url);
        assert.equal(r.statusCode, 200);
        assert.deepEqual(Buffer.from(await r.body.arrayBuffer()), await readFile(clip.framePath(Number(r.headers['x-frame-index']))));
      } finally {
        await cam.close();
      }
    } finally {
      await infer.close();
    }
  });
});
