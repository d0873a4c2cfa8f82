/**
 * Vehicle visits benchmark (issue 11): per-frame mode (`tracking.enabled: false`) against visit
 * mode, on the generated pump clip (exact ground truth) and on traffic_640x360.mp4 (a real
 * street), each streamed over RTSP at 2 fps to the real relay (in this process) and a real
 * infer (a separate process, so its CPU is its own). Pipeline: YOLO11n int8 at 320 -> a
 * MobileNetV2 int8 classifier branch on the car crop. A counting proxy between relay and
 * infer sees every request and answer (stage, and whether the branch ran: timings.nodes).
 * Phases run one after another, so the infer CPU of each is separate.
 * Run: npm run bench:visits   (BENCH_SECONDS=60: seconds of the street video per phase)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import WebSocket from 'ws';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay } from '@detector-worker/relay/server';
import { fixturePath, repoRoot } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';
import { startRtspServer } from '@detector-worker/testkit/rtsp-server';
import { freePort } from '@detector-worker/testkit/servers';

/** What this uses of test/support/pump-clip (compiled by `npm run build`; loaded at run time, outside this project). */
interface PumpClipModule {
  pumpScene(): { durationS: number };
  renderPumpClip(scene: unknown, dir: string, options: { jpegs: boolean }): Promise<{ mp4: string | null }>;
  visitsIn(scene: unknown): Array<{ vehicleId: string; start: number; end: number; stoppedAt: number | null; kind: 'stop' | 'pass' }>;
}

const STREET_SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const FPS = 2;
const TICK_MS = 10; // USER_HZ = 100 on Linux
const BRANCH = 'mobilenet_v2';
const MAX_RUNS = 3;
const r1 = (n: number) => Math.round(n * 10) / 10;
const r2 = (n: number) => Math.round(n * 100) / 100;
const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? NaN;

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * TICK_MS) / 1000;
}

/** The pipeline: detector -> MobileNetV2 on the car crop (ImageNet preprocessing, PROVENANCE). */
async function archive(dir: string, name: string, tracking: object): Promise<string> {
  const files = ['yolo11n_int8_320.onnx', 'mobilenetv2-12-int8.onnx', 'imagenet_labels.json'];
  return writeMpta(dir, `${name}.mpta`, {
    pipeline: {
      pipeline: {
        modelId: 'vehicle_det', modelFile: files[0], minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'], multiClass: true, crop: false,
        tracking: { ...tracking, maxRuns: MAX_RUNS },
        branches: [{
          modelId: BRANCH, modelFile: files[1], labelsFile: files[2], crop: true, cropClass: 'car', triggerClasses: ['car'], minConfidence: 0.05, parallel: true,
          resizeTarget: [224, 224],
          preprocess: { resize: 'center-crop', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
        }],
      },
    },
    files: Object.fromEntries(await Promise.all(files.map(async (f) => [f, await readFile(fixturePath(`models/${f}`))] as const))),
  });
}

interface ProxyCounts { detect: number; full: number; branchRuns: number; failed: number }

/** Forwards the relay's requests to infer and counts them by stage, and the answers in which the branch ran. */
async function countingProxy(target: string): Promise<{ url: string; counts: ProxyCounts; reset(): void; close(): Promise<void> }> {
  let counts: ProxyCounts = { detect: 0, full: 0, branchRuns: 0, failed: 0 };
  const body = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection' && k !== 'content-length') headers[k] = v;
      const payload = await body(req);
      const upstream = await request(`${target}${req.url}`, { method: req.method as 'POST', headers, body: payload.length ? payload : null });
      const answer = Buffer.from(await upstream.body.arrayBuffer());
      if ((req.url ?? '').includes('/infer')) {
        const stage = /[?&]stage=detect\b/.test(req.url ?? '') || req.headers['x-stage'] === 'detect' ? 'detect' : 'full';
        counts[stage]++;
        if (upstream.statusCode !== 200) counts.failed++;
        else {
          try {
            const json = JSON.parse(answer.toString()) as { timings?: { nodes?: Record<string, unknown> } };
            if (json.timings?.nodes && BRANCH in json.timings.nodes) counts.branchRuns++;
          } catch { /* counted as a request only */ }
        }
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(upstream.headers)) if (typeof v === 'string' && !['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k)) out[k] = v;
      res.writeHead(upstream.statusCode, out).end(answer);
    })().catch((err: Error) => { if (!res.headersSent) res.writeHead(502).end(err.message); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get counts() { return counts; },
    reset: () => { counts = { detect: 0, full: 0, branchRuns: 0, failed: 0 }; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function startInferProcess(cacheDir: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'services/infer/dist/main.js')], {
    env: { ...process.env, INFER_HOST: '127.0.0.1', INFER_PORT: String(port), MODEL_CACHE_DIR: cacheDir, LOG_LEVEL: 'warn', LOG_PRETTY: '0', INFER_WORKERS: '1', ORT_INTRA_OP_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const ok = await request(`${url}/readyz`).then((r) => r.body.dump().then(() => r.statusCode === 200), () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { url, pid: child.pid!, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

interface Row {
  clip: string;
  mode: string;
  minutes: number;
  requests: number;
  cpu: number;
  events: number;
  visits: string;
  fullRuns: number;
  branchRuns: number;
  delays: number[];
  /** Per ground-truth visit: vehicle and its stop -> event delay. */
  delayOf: string[];
  visitsStarted: number;
}

async function main(): Promise<void> {
  const { pumpScene, renderPumpClip, visitsIn } = (await import(join(repoRoot, 'test/dist/support/pump-clip.js'))) as PumpClipModule;
  const work = await mkdtemp(join(tmpdir(), 'visits-bench-'));
  const scene = pumpScene();
  console.log('rendering the pump clip...');
  const clip = await renderPumpClip(scene, join(work, 'clip'), { jpegs: false });
  const perFrame = await archive(work, 'per-frame', { enabled: false });
  // As in test/relay-visits: YOLO11n at 320 scores the parked roadster 0.44–0.55 on RTSP frames.
  const visits = await archive(work, 'visits', { highScore: 0.4, newTrackScore: 0.4 });
  const infer = await startInferProcess(join(work, 'cache'));
  const proxy = await countingProxy(infer.url);
  for (const [id, file] of [['per-frame', perFrame], ['visits', visits]] as const) {
    const r = await request(`${infer.url}/v1/models/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ modelUrl: `file://${file}` }) });
    await r.body.dump();
    if (r.statusCode >= 300) throw new Error(`loading ${id}: HTTP ${r.statusCode}`);
  }
  const relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: proxy.url, targetFps: FPS, heartbeatIntervalMs: 1000 }, pino({ level: 'silent' }));
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/`);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const events: Array<{ sub: string; at: number }> = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { type: string; subscriptionIdentifier?: string };
    if (m.type === 'imageDetection') events.push({ sub: m.subscriptionIdentifier!, at: Date.now() });
  });

  const rows: Row[] = [];
  const phases = [
    { clip: 'pump (generated)', video: clip.mp4!, copy: true, seconds: scene.durationS + 2 },
    { clip: 'traffic_640x360', video: fixturePath('video/traffic_640x360.mp4'), copy: false, seconds: STREET_SECONDS },
  ];
  for (const phase of phases) {
    for (const mode of ['per-frame', 'visits'] as const) {
      const sub = `bench-${rows.length};cam`;
      const rtsp = await startRtspServer(phase.video, { copy: phase.copy, fps: 10 });
      const clipStart = Date.now();
      proxy.reset();
      const cpu0 = cpuSeconds(infer.pid);
      ws.send(JSON.stringify({ type: 'subscribe', payload: { subscriptionIdentifier: sub, rtspUrl: rtsp.url, modelUrl: `file://${mode === 'visits' ? visits : perFrame}`, modelName: 'Vehicles', modelId: mode } }));
      let firstFrameAt = 0;
      while (Date.now() - clipStart < phase.seconds * 1000) {
        await new Promise((r) => setTimeout(r, 100));
        if (!firstFrameAt && (relay.registry.get(sub)?.group.stats.framesSeen ?? 0) > 0) firstFrameAt = Date.now();
      }
      const stats = { ...relay.registry.get(sub)!.group.stats };
      ws.send(JSON.stringify({ type: 'unsubscribe', payload: { subscriptionIdentifier: sub } }));
      await new Promise((r) => setTimeout(r, 1500)); // the last request in flight
      const cpu = cpuSeconds(infer.pid) - cpu0;
      await rtsp.stop();
      const mine = events.filter((e) => e.sub === sub);
      const minutes = (phase.seconds - (firstFrameAt ? (firstFrameAt - clipStart) / 1000 : 0)) / 60;
      const counts = proxy.counts;
      const delays: number[] = [];
      const delayOf: string[] = [];
      let visitsLabel = `${stats.visitsStarted} started`;
      if (phase.copy) {
        const truth = visitsIn(scene).filter((v) => v.kind === 'stop');
        visitsLabel = `${truth.length} (ground truth)${mode === 'visits' ? `, ${stats.visitsStarted} started` : ''}`;
        for (const v of truth) {
          const due = Math.max(clipStart + v.stoppedAt! * 1000, firstFrameAt);
          const hit = mine.find((e) => e.at >= clipStart + (v.start - 1) * 1000 && e.at <= clipStart + v.end * 1000 && (mode === 'visits' || e.at >= due));
          if (hit) delays.push((hit.at - due) / 1000);
          delayOf.push(`${v.vehicleId}${v.stoppedAt! * 1000 + clipStart < firstFrameAt ? ' (parked before the camera came up)' : ''}: ${hit ? `${r2((hit.at - due) / 1000)} s` : 'no event'}`);
        }
      }
      rows.push({ clip: phase.clip, mode, minutes, requests: counts.detect + counts.full, cpu, events: mine.length, visits: visitsLabel, fullRuns: counts.full, branchRuns: counts.branchRuns, delays, delayOf, visitsStarted: stats.visitsStarted });
      console.log(`${phase.clip} ${mode}: ${JSON.stringify({ ...counts, events: mine.length, cpu: r2(cpu), framesSeen: stats.framesSeen, framesIdle: stats.framesIdle, visitsStarted: stats.visitsStarted, visitsEnded: stats.visitsEnded })}`);
    }
  }
  ws.close();
  await relay.close();
  await proxy.close();
  await infer.stop();
  await rm(work, { recursive: true, force: true });

  console.log(`\nRTSP at ${FPS} fps, YOLO11n int8 320 + MobileNetV2 int8 branch, infer: 1 worker, 1 onnxruntime thread; maxRuns ${MAX_RUNS}`);
  console.log('| clip | mode | infer requests / camera-min | infer CPU-s / camera-min | CMS events | visits | full runs / visit | branch runs / visit | stop -> event p50 / p95 (s) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const delayNotes: string[] = [];
  for (const r of rows) {
    const perVisit = (n: number) => (r.mode === 'visits' ? (r.visitsStarted ? r2(n / r.visitsStarted) : '—') : `${r.events ? r2(n / r.events) : '—'} per event`);
    const delay = r.delays.length ? `${r2(pct(r.delays, 50))} / ${r2(pct(r.delays, 95))} (n=${r.delays.length})` : '—';
    if (r.delayOf.length) delayNotes.push(`${r.clip} ${r.mode}: ${r.delayOf.join(', ')}`);
    console.log(`| ${r.clip} | ${r.mode} | ${r1(r.requests / r.minutes)} | ${r2(r.cpu / r.minutes)} | ${r.events} | ${r.visits} | ${r.mode === 'visits' ? perVisit(r.fullRuns) : 'every frame'} | ${perVisit(r.branchRuns)} | ${delay} |`);
  }
  console.log(`\nstop -> event per visit (a car parked before the camera came up: from its first frame):\n${delayNotes.join('\n')}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
