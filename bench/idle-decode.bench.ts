/**
 * Is reading a quiet camera slowly worth it (issue 13)? One RTSP camera (a generated 1280×720
 * forecourt, a keyframe every 2 s, empty for 24 s, then a car that stops at 27 s) through the
 * real relay and infer: ffmpeg's CPU while the scene is quiet and read at the idle rate (keyframes
 * only) against while it is busy at the full rate, and the switching delay from the car's first
 * appearance to the camera being back at its full rate, and to the car's event.
 * Run: npm run build && node bench/dist/idle-decode.bench.js
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import WebSocket from 'ws';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer } from '@detector-worker/infer/start';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay } from '@detector-worker/relay/server';
import { fixturePath, repoRoot } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';
import { startRtspServer } from '@detector-worker/testkit/rtsp-server';

interface PumpClipModule {
  mostlyEmptyScene(options: { durationS: number; everyS: number; fps: number }): unknown;
  renderPumpClip(scene: unknown, dir: string, options: { jpegs: boolean }): Promise<{ mp4: string | null }>;
  visitsIn(scene: unknown): Array<{ vehicleId: string; start: number; stoppedAt: number | null }>;
}

const TICK_MS = 10;
function ffmpegCpuMs(): number {
  let total = 0;
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-P', String(process.pid), 'ffmpeg']).toString().trim().split('\n').filter(Boolean);
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      total += (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch {
      /* exited */
    }
  }
  return total;
}

const work = await mkdtemp(join(tmpdir(), 'idle-decode-'));
const { mostlyEmptyScene, renderPumpClip, visitsIn } = (await import(join(repoRoot, 'test/dist/support/pump-clip.js'))) as PumpClipModule;
const scene = mostlyEmptyScene({ durationS: 60, everyS: 60, fps: 10 });
const clip = await renderPumpClip(scene, work, { jpegs: false });
const visit = visitsIn(scene)[0]!;
const archive = await writeMpta(work, 'det.mpta', {
  pipeline: { pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'], tracking: { highScore: 0.4, newTrackScore: 0.4 } } },
  files: { 'det.onnx': await readFile(fixturePath('models/yolo11n_int8_320.onnx')) },
});
const infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache'), workers: 1 }, pino({ level: 'silent' }));
const relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: infer.url, targetFps: 2, idleSlowCamera: process.env.BENCH_SLOW !== '0' }, pino({ level: process.env.BENCH_LOG ?? 'silent' }));
const rtsp = await startRtspServer(clip.mp4!, { copy: true });
const ws = new WebSocket(relay.url.replace('http', 'ws'));
await new Promise((r) => ws.once('open', r));
const events: number[] = [];
ws.on('message', (d) => {
  const m = JSON.parse(d.toString()) as { type: string };
  if (m.type === 'imageDetection') events.push(Date.now());
});
const clipStart = Date.now();
ws.send(JSON.stringify({ type: 'subscribe', payload: { subscriptionIdentifier: 'display-1;cam-1', rtspUrl: rtsp.url, modelUrl: `file://${archive}`, modelName: 'det', modelId: 1 } }));

const samples: Array<{ t: number; slow: boolean; ffmpegMs: number; frames: number }> = [];
let slowAt: number | null = null;
let fastAt: number | null = null;
let firstFastFrameAt: number | null = null;
let lastSlow = false;
while (Date.now() - clipStart < 40_000) {
  await new Promise((r) => setTimeout(r, 250));
  const sub = relay.registry.get('display-1;cam-1');
  const reader = sub ? relay.registry.readerOf(sub) : undefined;
  const slow = (reader as { keyframesOnly?: boolean } | undefined)?.keyframesOnly === true;
  const t = Date.now() - clipStart;
  if (slow && !lastSlow) slowAt = t;
  if (!slow && lastSlow && fastAt === null) fastAt = t;
  lastSlow = slow;
  const frames = reader?.stats.framesRead ?? 0;
  if (fastAt !== null && firstFastFrameAt === null && samples.length && frames > samples.at(-1)!.frames) firstFastFrameAt = t;
  samples.push({ t, slow, ffmpegMs: ffmpegCpuMs(), frames });
}
const cpuOver = (from: number, to: number): number => {
  const a = samples.find((s) => s.t >= from);
  const b = [...samples].reverse().find((s) => s.t <= to);
  return a && b && b.t > a.t ? (100 * (b.ffmpegMs - a.ffmpegMs)) / (b.t - a.t) : NaN;
};
const r1 = (n: number) => Math.round(n * 10) / 10;
console.log(JSON.stringify({ carEntersAt: visit.start, carStopsAt: visit.stoppedAt, slowAtS: slowAt && r1(slowAt / 1000), fastAgainAtS: fastAt && r1(fastAt / 1000), firstFrameAfterS: firstFastFrameAt && r1(firstFastFrameAt / 1000), eventsAtS: events.map((e) => r1((e - clipStart) / 1000)) }));
console.log(`ffmpeg CPU while quiet and slow (15-23 s): ${r1(cpuOver(15_000, 23_000))} % of a core; while busy at full rate (30-38 s): ${r1(cpuOver(30_000, 38_000))} %`);
ws.close();
await relay.close();
await rtsp.stop();
await infer.close();
await rm(work, { recursive: true, force: true });
