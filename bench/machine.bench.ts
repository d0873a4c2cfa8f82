/**
 * Whole-machine capacity (issue 13): relay and infer as separate processes on this machine,
 * N cameras each served by its own RTSP test server streaming a generated, mostly-empty 1080p
 * pump clip, driven as the CMS over WebSocket (one full-frame subscription per camera).
 * BEFORE = today's behaviour: per-frame mode (`tracking.enabled: false`: every frame a full
 * run), each camera read by one ffmpeg decoding every frame (IDLE_SLOW_CAMERA=false); AFTER =
 * visit mode with the defaults (shrunk detect frames, idle gating, a quiet camera read at its
 * keyframes through the keyframe gate). CPU comes from /proc: the relay
 * process plus its ffmpeg children, and the infer process (2 workers, 1 onnxruntime thread).
 * Cameras per machine = floor(2 cores × 0.85 / (CPU-s per camera-minute / 60)); then AFTER
 * runs again with that many cameras (capped) to check that every car's event still arrives
 * within 3 s of it stopping and that frames keep up. With BENCH_CAMERAS / BENCH_BEFORE_CAMERAS
 * both are served for real at the given counts, and the largest count that kept every event
 * within 3 s is each one's capacity. The simulated cameras (RTSP servers, their ffmpeg senders
 * at nice 19) run on the same machine; their CPU is printed, not counted.
 * Run: npm run bench:machine   (BENCH_SECONDS=60 per phase, BENCH_MAX_CAMERAS=8, BENCH_UPSCALE=1,
 *   BENCH_EVERY_S=60: a car every 60 s (the mostly-empty preset's own period; 30 for a busier forecourt),
 *   BENCH_WARMUP_S: clip seconds before measuring (default 10, or less so the first car is measured),
 *   BENCH_UNGATED=1: one more AFTER phase with IDLE_SLOW_CAMERA=false, what the keyframe gate saves,
 *   BENCH_CAMERAS=N[,M...]: many-camera phases with these counts instead of the estimate (the relay's
 *   MAX_STREAMS is raised to the largest), BENCH_BEFORE_CAMERAS=N[,M...]: the same for BEFORE,
 *   BENCH_STAGGER=1: the many-camera phase with each camera's clip started 1/N of a period after
 *   the previous one, measured over one period once all are running: cars spread out as at a station,
 *   BENCH_PREVIEW_AB=W[,W...]: one more AFTER phase per width with FRAME_PREVIEW_WIDTH=W (0: none),
 *   at BENCH_AB_CAMERAS (default 2) cameras, what frame previews save). BEFORE runs with
 *   FRAME_PREVIEW_WIDTH=0: today's reader made no previews.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import WebSocket from 'ws';
import { fixturePath, repoRoot } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';
import { startRtspServer, type RtspTestServer } from '@detector-worker/testkit/rtsp-server';
import { freePort } from '@detector-worker/testkit/servers';

/** What this uses of test/support/pump-clip (compiled by `npm run build`; loaded at run time, outside this project). */
interface PumpClipModule {
  mostlyEmptyScene(options: { durationS: number; everyS: number; fps: number }): { durationS: number; vehicles: Array<{ id: string; keyframes: Array<{ t: number }> }> };
  renderPumpClip(scene: unknown, dir: string, options: { jpegs: boolean }): Promise<{ mp4: string | null }>;
  visitsIn(scene: unknown): Array<{ vehicleId: string; start: number; end: number; stoppedAt: number | null; kind: 'stop' | 'pass' }>;
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const MAX_CAMERAS = Number(process.env.BENCH_MAX_CAMERAS ?? 8);
const UPSCALE = process.env.BENCH_UPSCALE !== '0';
const UNGATED_PHASE = process.env.BENCH_UNGATED !== '0';
/** The many-camera phase with the cameras' clips spread over one period (cars arriving at different times). */
const STAGGER = process.env.BENCH_STAGGER === '1';
const PREVIEW_AB = (process.env.BENCH_PREVIEW_AB ?? '').split(',').filter(Boolean).map(Number);
const AB_CAMERAS = Number(process.env.BENCH_AB_CAMERAS ?? 2);
/** BENCH_CAMERAS: camera counts to serve for real (comma-separated). */
const COUNTS = (process.env.BENCH_CAMERAS ?? '').split(',').filter(Boolean).map(Number);
/** BENCH_BEFORE_CAMERAS: the same for today's behaviour (its delay: the first event once the car has stopped). */
const BEFORE_COUNTS = (process.env.BENCH_BEFORE_CAMERAS ?? '').split(',').filter(Boolean).map(Number);
/** A car every this many seconds (mostlyEmptyScene everyS, ≥ 12); each stays 12 s on screen. */
const EVERY_S = Number(process.env.BENCH_EVERY_S ?? 60);
const CORES = 2;
const HEADROOM = 0.85;
const DEADLINE_S = 3;
/**
 * Clip seconds skipped before measuring: ffmpeg start-up, the first frames and the first 4 s of
 * quiet before a camera is read slowly, which a camera running for months pays once. Less when
 * the first car would come sooner (it enters at EVERY_S / 2 - 6 s).
 */
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? Math.max(3, Math.min(10, EVERY_S / 2 - 7)));
const TICK_MS = 10; // USER_HZ = 100 on Linux
const r2 = (n: number) => Math.round(n * 100) / 100;
const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds of a process with its reaped children (cutime/cstime), plus its live children whose name matches `children`. */
function cpuSeconds(pid: number, children?: string, withChildren = true): number {
  const own = (p: number | string, reaped: boolean) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0)) * TICK_MS) / 1000;
    } catch {
      return 0; // exited between pgrep and the read
    }
  };
  let total = own(pid, withChildren);
  if (children && withChildren) {
    let kids: string[] = [];
    try {
      kids = execFileSync('pgrep', ['-P', String(pid), children]).toString().trim().split('\n').filter(Boolean);
    } catch { /* none */ }
    for (const k of kids) total += own(k, true);
  }
  return total;
}

async function spawnService(script: string, env: Record<string, string>, port: number): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [join(repoRoot, script)], { env: { ...process.env, LOG_LEVEL: 'warn', LOG_PRETTY: '0', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    const ok = await request(`${url}/healthz`).then((r) => r.body.dump().then(() => r.statusCode === 200), () => false);
    if (ok) break;
    if (i > 300) throw new Error(`${script} not healthy after 30 s`);
    await sleep(100);
  }
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Prometheus text -> `name{labels}` -> value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const r = await request(`${url}/metrics`);
  const text = await r.body.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
const sumOf = (m: Map<string, number>, prefix: string, contains = '') => [...m].filter(([k]) => k.startsWith(prefix) && k.includes(contains)).reduce((s, [, v]) => s + v, 0);

interface PhaseResult {
  label: string;
  mode: 'before' | 'after';
  cameras: number;
  /** CPU-s per camera-minute over the whole window, the clip's empty stretches and its busy ones. */
  relay: { all: number; idle: number; busy: number };
  /** The relay process alone (without its ffmpeg children), over the whole window. */
  relayNode: number;
  infer: { all: number; idle: number; busy: number };
  cameraSim: number;
  /** Cameras the relay never read a frame of (a refused subscription, a camera that never came up). */
  silentCameras: number;
  eventsPerCamera: number[];
  truthPerCamera: number;
  delays: number[];
  missed: number;
  framesRead: number;
  framesSent: number;
  framesDropped: number;
  frameAgeP95: number;
  detectRequests: number;
  fullRuns: number;
}

async function main(): Promise<void> {
  const { mostlyEmptyScene, renderPumpClip, visitsIn } = (await import(join(repoRoot, 'test/dist/support/pump-clip.js'))) as PumpClipModule;
  const work = await mkdtemp(join(tmpdir(), 'machine-bench-'));
  const scene = mostlyEmptyScene({ durationS: 60, everyS: EVERY_S, fps: 10 });
  const truth = visitsIn(scene).filter((v) => v.kind === 'stop');
  // Busy = a car on screen (first to last keyframe) plus 2 s for the pipeline to settle.
  const busy = scene.vehicles.map((v) => [v.keyframes[0]!.t, v.keyframes.at(-1)!.t + 2] as const);
  const isBusy = (t: number) => busy.some(([a, b]) => t >= a && t < b);
  console.log(`rendering the clip (ground truth: ${truth.map((v) => `${v.vehicleId} ${v.start}-${v.end} s, stops at ${v.stoppedAt} s`).join('; ')})...`);
  let video = (await renderPumpClip(scene, join(work, 'clip'), { jpegs: false })).mp4!;
  if (UPSCALE) {
    const hd = join(work, 'clip-1080p.mp4');
    // A 1080p camera's bitrate (~4 Mbit/s); the clip's noise would otherwise take far more.
    await promisify(execFile)('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-i', video, '-vf', 'scale=1920:1080', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '20', '-keyint_min', '20', '-sc_threshold', '0', '-bf', '0',
      '-b:v', '4000k', '-maxrate', '4000k', '-bufsize', '8000k', '-pix_fmt', 'yuv420p', hd]);
    video = hd;
  }
  const files = ['yolo11n_int8_320.onnx', 'car_color_cls.onnx'];
  const payload = Object.fromEntries(await Promise.all(files.map(async (f) => [f, await readFile(fixturePath(`models/${f}`))] as const)));
  const archive = (name: string, tracking: object) =>
    writeMpta(work, `${name}.mpta`, {
      pipeline: {
        pipeline: {
          modelId: 'vehicle_det', modelFile: files[0], minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'], multiClass: true, crop: false, tracking,
          branches: [{ modelId: 'car_color', modelFile: files[1], crop: true, cropClass: 'car', resizeTarget: [224, 224], triggerClasses: ['car'], minConfidence: 0.2, parallel: true }],
        },
      },
      files: payload,
    });
  const models = {
    before: await archive('before', { enabled: false }),
    // As in the other benches: YOLO11n at 320 scores cars 0.44–0.55 on some RTSP frames.
    after: await archive('after', { highScore: 0.4, newTrackScore: 0.4 }),
  };

  const inferPort = await freePort();
  const infer = await spawnService('services/infer/dist/main.js', { INFER_HOST: '127.0.0.1', INFER_PORT: String(inferPort), MODEL_CACHE_DIR: join(work, 'cache'), INFER_WORKERS: '2', ORT_INTRA_OP_THREADS: '1' }, inferPort);
  for (const [id, file] of Object.entries(models)) {
    const r = await request(`${infer.url}/v1/models/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ modelUrl: `file://${file}` }) });
    await r.body.dump();
    if (r.statusCode >= 300) throw new Error(`loading ${id}: HTTP ${r.statusCode}`);
  }
  interface Relay { svc: Awaited<ReturnType<typeof spawnService>>; ws: WebSocket; events: Array<{ sub: string; at: number; frameAt: number }> }
  const startRelay = async (env: Record<string, string>): Promise<Relay> => {
    const port = await freePort();
    const svc = await spawnService('services/relay/dist/main.js', { RELAY_HOST: '127.0.0.1', RELAY_PORT: String(port), INFER_URL: infer.url, TARGET_FPS: '2', ...env }, port);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    const events: Relay['events'] = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string; subscriptionIdentifier?: string; timestamp?: string };
      if (m.type === 'imageDetection') events.push({ sub: m.subscriptionIdentifier!, at: Date.now(), frameAt: Date.parse(m.timestamp ?? '') });
    });
    return { svc, ws, events };
  };
  const stopRelay = async (r: Relay) => {
    r.ws.close();
    await r.svc.stop();
  };

  const runPhase = async (label: string, mode: 'before' | 'after', n: number, { svc: relay, ws, events }: Relay, staggered = false): Promise<PhaseResult> => {
    const servers: RtspTestServer[] = [];
    const starts: number[] = [];
    const subs = Array.from({ length: n }, (_, i) => `display-${i + 1};${label}-cam-${i + 1}`);
    const subscribe = (i: number) => ws.send(JSON.stringify({ type: 'subscribe', payload: { subscriptionIdentifier: subs[i], rtspUrl: servers[i]!.url, modelUrl: `file://${models[mode]}`, modelName: 'Vehicles', modelId: mode } }));
    const before0 = await scrape(relay.url);
    try {
      if (!staggered) {
        // Every camera's clip starts now: its cars arrive at the same clip times (the worst case).
        await Promise.all(Array.from({ length: n }, async (_, i) => {
          starts[i] = Date.now();
          servers[i] = await startRtspServer(video, { copy: true, nice: 19 });
        }));
        for (let i = 0; i < n; i++) subscribe(i);
      } else {
        // Staggered: camera i's clip starts i/n of a period later, so cars arrive spread out, as at a real station.
        const first = Date.now();
        for (let i = 0; i < n; i++) {
          await sleep(Math.max(0, first + (i * EVERY_S * 1000) / n - Date.now()));
          starts[i] = Date.now();
          servers[i] = await startRtspServer(video, { copy: true, nice: 19 });
          subscribe(i);
        }
      }
      // Staggered, the window starts once the last camera is past its warm-up and lasts one period.
      const clipStart = staggered ? Math.max(...starts) : Math.min(...starts);
      const windowEnd = clipStart + (staggered ? (WARMUP_S + EVERY_S) * 1000 : SECONDS * 1000);
      const samples: Array<{ t: number; relay: number; relayNode: number; infer: number; sim: number; age: number }> = [];
      const sample = async () => {
        const m = await scrape(relay.url);
        samples.push({
          t: (Date.now() - clipStart) / 1000,
          relay: cpuSeconds(relay.pid, 'ffmpeg'),
          relayNode: cpuSeconds(relay.pid, undefined, false),
          infer: cpuSeconds(infer.pid, '.'),
          // The RTSP servers' ffmpeg children; relay and infer are children of this process too.
          sim: cpuSeconds(process.pid, 'ffmpeg'),
          age: Math.max(0, ...subs.map((s) => m.get(`relay_frame_age_at_send_seconds{subscription="${s}"}`) ?? 0)),
        });
        return m;
      };
      await sleep(Math.max(0, clipStart + WARMUP_S * 1000 - Date.now()));
      let last = await sample();
      while (Date.now() < windowEnd) {
        await sleep(1000);
        last = await sample();
      }
      const per = (key: 'relay' | 'relayNode' | 'infer' | 'sim', pick: (t: number) => boolean) => {
        let cpu = 0;
        let secs = 0;
        for (let k = 1; k < samples.length; k++) {
          const a = samples[k - 1]!;
          const b = samples[k]!;
          if (!pick((a.t + b.t) / 2)) continue;
          cpu += b[key] - a[key];
          secs += b.t - a.t;
        }
        return secs ? r2((cpu / secs) * 60 / n) : NaN;
      };
      // Staggered cameras are never all idle or all busy at once: only the whole window counts.
      const split = (key: 'relay' | 'infer') => ({ all: per(key, () => true), idle: staggered ? NaN : per(key, (t) => !isBusy(t)), busy: staggered ? NaN : per(key, isBusy) });
      const delays: number[] = [];
      let missed = 0;
      const eventsPerCamera = subs.map((s, i) => {
        const mine = events.filter((e) => e.sub === s);
        // The RTSP server loops the clip: its k-th pass starts k clip lengths later.
        for (let k = 0; k < 4; k++) {
          for (const v of truth) {
            const offset = starts[i]! + k * scene.durationS * 1000;
            const due = offset + v.stoppedAt! * 1000;
            // Stops the window saw with time left for their event.
            if (due < clipStart + WARMUP_S * 1000 || due > windowEnd - DEADLINE_S * 1000) continue;
            // After: the visit's one event. Before (an event per frame with a detection): the
            // first one of a frame taken once the car had stopped (its timestamp is the frame's),
            // so a machine falling behind shows as delay.
            const late = offset + (v.end + DEADLINE_S) * 1000;
            const hit = mode === 'after' ? mine.find((e) => e.at >= offset + (v.start - 1) * 1000 && e.at <= late) : mine.find((e) => e.frameAt >= due && e.at <= late);
            if (hit) delays.push((hit.at - due) / 1000);
            else missed++;
          }
        }
        return mine.length;
      });
      const visitDelta = (event: string) => sumOf(last, 'relay_visit_events_total', `event="${event}"`) - sumOf(before0, 'relay_visit_events_total', `event="${event}"`);
      return {
        label, mode, cameras: n,
        relay: split('relay'), relayNode: per('relayNode', () => true), infer: split('infer'), cameraSim: per('sim', () => true),
        eventsPerCamera, truthPerCamera: staggered ? 1 : truth.filter((v) => v.stoppedAt! <= SECONDS).length, delays, missed,
        framesRead: servers.reduce((s, srv) => s + (last.get(`relay_camera_frames_read_total{camera="${srv.url}"}`) ?? 0), 0),
        silentCameras: servers.filter((srv) => !last.get(`relay_camera_frames_read_total{camera="${srv.url}"}`)).length,
        framesSent: subs.reduce((s, id) => s + (last.get(`relay_frames_sent_total{subscription="${id}"}`) ?? 0), 0),
        framesDropped: subs.reduce((s, id) => s + (last.get(`relay_frames_dropped_total{subscription="${id}"}`) ?? 0), 0),
        frameAgeP95: r2(pct(samples.map((s) => s.age), 95)),
        detectRequests: visitDelta('detect'),
        fullRuns: visitDelta('full_run'),
      };
    } finally {
      for (const id of subs.slice(0, servers.length)) ws.send(JSON.stringify({ type: 'unsubscribe', payload: { subscriptionIdentifier: id } }));
      await sleep(1500); // the last request in flight
      await Promise.all(servers.map((s) => s?.stop()));
    }
  };

  const rows: PhaseResult[] = [];
  const show = (r: PhaseResult) => console.log(`${r.label}: ${JSON.stringify(r)}`);
  // MAX_STREAMS (20 by default) would refuse the cameras past it, silently on the wire.
  const maxStreams = String(Math.max(20, MAX_CAMERAS, ...COUNTS, ...BEFORE_COUNTS));
  // Today's reader first: one ffmpeg per camera decoding every frame.
  let relay = await startRelay({ IDLE_SLOW_CAMERA: 'false', FRAME_PREVIEW_WIDTH: '0', MAX_STREAMS: maxStreams });
  const estimate = (r: PhaseResult) => Math.floor((CORES * HEADROOM) / ((r.relay.all + r.infer.all) / 60));
  try {
    rows.push(await runPhase('before', 'before', 2, relay));
    show(rows[0]!);
    for (const n of BEFORE_COUNTS) {
      rows.push(await runPhase(`before-${n}${STAGGER ? ' staggered' : ''}`, 'before', n, relay, STAGGER));
      show(rows.at(-1)!);
    }
    if (UNGATED_PHASE) {
      rows.push(await runPhase('after, IDLE_SLOW_CAMERA=false', 'after', 2, relay));
      show(rows.at(-1)!);
    }
    await stopRelay(relay);
    relay = await startRelay({ MAX_STREAMS: maxStreams });
    rows.push(await runPhase('after', 'after', 2, relay));
    const after = rows.at(-1)!;
    show(after);
    // BENCH_CAMERAS serves those counts whatever the estimate says (to try them for real).
    for (const n of COUNTS.length ? COUNTS : [Math.min(MAX_CAMERAS, estimate(after))]) {
      if (n <= 2) continue;
      rows.push(await runPhase(`after-${n}${STAGGER ? ' staggered' : ''}`, 'after', n, relay, STAGGER));
      show(rows.at(-1)!);
    }
    for (const width of PREVIEW_AB) {
      await stopRelay(relay);
      relay = await startRelay({ MAX_STREAMS: maxStreams, FRAME_PREVIEW_WIDTH: String(width) });
      rows.push(await runPhase(`after ×${AB_CAMERAS}, FRAME_PREVIEW_WIDTH=${width}`, 'after', AB_CAMERAS, relay, STAGGER));
      show(rows.at(-1)!);
    }

    console.log(`\n1080p${UPSCALE ? '' : ' (not upscaled: 1280x720)'} 10 fps H.264 over RTSP, read at 2 fps; YOLO11n int8 320 + car_color_cls branch; infer: 2 workers × 1 onnxruntime thread; a car every ${EVERY_S} s; ${SECONDS} s per phase, measured from clip ${WARMUP_S} s`);
    console.log('| phase | cameras | relay+ffmpeg CPU-s / camera-min (all / idle / busy; relay process alone) | infer CPU-s / camera-min (all / idle / busy) | total | cameras per machine (2 cores × 0.85) | CMS events per camera (truth) | stop -> event p50 / p95 / max (s) | frames read / sent / dropped | frame age at send p95 (s) |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const total = r2(r.relay.all + r.infer.all);
      const delay = r.delays.length ? `${r2(pct(r.delays, 50))} / ${r2(pct(r.delays, 95))} / ${r2(Math.max(...r.delays))} (n=${r.delays.length}, missed ${r.missed})` : `no event (missed ${r.missed})`;
      console.log(`| ${r.label} | ${r.cameras} | ${r.relay.all} / ${r.relay.idle} / ${r.relay.busy}; ${r.relayNode} | ${r.infer.all} / ${r.infer.idle} / ${r.infer.busy} | ${total} | ${estimate(r)} | ${r.eventsPerCamera.join(', ')} (${r.truthPerCamera}) | ${delay} | ${r.framesRead} / ${r.framesSent} / ${r.framesDropped} | ${r.frameAgeP95} |`);
    }
    const ratio = estimate(after) / estimate(rows[0]!);
    const cpuRatio = (rows[0]!.relay.all + rows[0]!.infer.all) / (after.relay.all + after.infer.all);
    console.log(`\ncameras per machine: before ${estimate(rows[0]!)}, after ${estimate(after)}: ${r2(ratio)}× (CPU per camera-minute ${r2(cpuRatio)}× less; target ≥ 3×: ${ratio >= 3 ? 'met' : 'missed'})`);
    const served = { before: 0, after: 0 };
    for (const big of rows.filter((r) => r.label.includes('-'))) {
      const ok = big.missed === 0 && big.silentCameras === 0 && big.delays.every((d) => d <= DEADLINE_S);
      if (ok) served[big.mode] = Math.max(served[big.mode], big.cameras);
      console.log(`${big.mode} with ${big.cameras} cameras: every car's event within ${DEADLINE_S} s of stopping: ${ok ? 'yes' : 'no'} (p95 ${r2(pct(big.delays, 95))} s, missed ${big.missed}, cameras never read ${big.silentCameras}); frames dropped ${big.framesDropped} of ${big.framesRead} read; detect requests ${big.detectRequests}, full runs ${big.fullRuns}`);
    }
    if (served.after) console.log(`served for real with every event in time: after ${served.after} cameras, ${r2(served.after / estimate(rows[0]!))}× before's estimate of ${estimate(rows[0]!)}`);
    if (served.after && served.before) console.log(`served for real, both: before ${served.before}, after ${served.after}: ${r2(served.after / served.before)}× (target ≥ 3×: ${served.after >= 3 * served.before ? 'met' : 'missed'})`);
    console.log(`camera simulation (RTSP servers in this process, not counted above): ${rows.map((r) => `${r.label} ${r.cameraSim}`).join(', ')} CPU-s per camera-minute`);
  } finally {
    await stopRelay(relay);
    await infer.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
