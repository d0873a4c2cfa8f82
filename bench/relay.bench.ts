/**
 * Relay benchmark (issue 4): per RTSP camera (traffic_1080p.mp4 streamed unchanged over
 * RTSP: 1080p25, a keyframe every 2 s), CPU and RSS of the relay process together with its
 * ffmpeg children, against a plain ffmpeg decoding the whole stream, in the same run.
 * Infer is a stub (answers at once) so only the relay is measured.
 * Run: npm run build && node bench/dist/relay.bench.js   (BENCH_SECONDS=20)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { fixturePath, repoRoot } from '@detector-worker/testkit/fixtures';
import { startRtspServer } from '@detector-worker/testkit/rtsp-server';
import { startStubInfer } from '@detector-worker/testkit/stub-infer';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const TICK_MS = 10; // USER_HZ = 100 on Linux
const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? NaN;
const r1 = (n: number) => Math.round(n * 10) / 10;

function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}
/**
 * Proportional set size: RSS with shared pages split between the processes sharing them.
 * Summing plain RSS would count Debian ffmpeg's ~100 shared libraries once per camera.
 */
function rssMb(pid: number): number {
  try {
    return Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
/** CPU ms of a process and its children, sampled over a window (children may come and go). */
async function measure(pid: number, seconds: number): Promise<{ cpuPercentOfCore: number; rssMb: number; ownMb: number }> {
  const start = new Map<number, number>([[pid, cpuMs(pid)], ...children(pid).map((c) => [c, cpuMs(c)] as [number, number])]);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  let used = 0;
  let rss = rssMb(pid);
  for (const p of [pid, ...children(pid)]) {
    used += cpuMs(p) - (start.get(p) ?? 0);
    if (p !== pid) rss += rssMb(p);
  }
  return { cpuPercentOfCore: r1((used / (seconds * 1000)) * 100), rssMb: r1(rss), ownMb: r1(rssMb(pid)) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startRelayProcess(inferUrl: string, env: Record<string, string>): Promise<{ child: ChildProcess; ws: WebSocket }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'services/relay/dist/main.js')], {
    env: { ...process.env, RELAY_PORT: String(port), RELAY_HOST: '127.0.0.1', INFER_URL: inferUrl, LOG_LEVEL: 'warn', LOG_PRETTY: '0', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      await new Promise<void>((res, rej) => {
        ws.once('open', () => res());
        ws.once('error', rej);
      });
      return { child, ws };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('relay did not start');
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

async function main(): Promise<void> {
  const video = fixturePath('video/traffic_1080p.mp4');
  const rtsp = await startRtspServer(video, { copy: true });
  const stub = await startStubInfer();
  stub.detection = { class: 'car' };
  await new Promise((r) => setTimeout(r, 1000));
  console.log(`${SECONDS} s per measurement; camera: traffic_1080p.mp4 over RTSP (copy, 1080p25, keyframe every 2 s)`);

  // Baseline: a plain ffmpeg decoding every frame of the stream.
  const full = spawn('ffmpeg', ['-loglevel', 'error', '-nostdin', '-rtsp_transport', 'tcp', '-i', rtsp.url, '-f', 'null', '-'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 3000));
  const baseline = await measure(full.pid!, SECONDS);
  await stop(full);
  const keyOnly = spawn('ffmpeg', ['-loglevel', 'error', '-nostdin', '-rtsp_transport', 'tcp', '-skip_frame', 'nokey', '-i', rtsp.url, '-f', 'null', '-'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 3000));
  const keyBaseline = await measure(keyOnly.pid!, SECONDS);
  await stop(keyOnly);
  console.log(`plain ffmpeg, full decode: ${baseline.cpuPercentOfCore}% of a core; keyframes only: ${keyBaseline.cpuPercentOfCore}%`);

  const scenario = async (label: string, fps: number, cameras: number): Promise<void> => {
    const { child, ws } = await startRelayProcess(stub.url, { TARGET_FPS: String(fps), MAX_STREAMS: '50' });
    for (let i = 0; i < cameras; i++) {
      ws.send(JSON.stringify({ type: 'subscribe', payload: { subscriptionIdentifier: `display-${i};cam-${i}`, rtspUrl: `${rtsp.url}${i}`, modelUrl: 'http://models/x.mpta', modelName: 'x', modelId: 1 } }));
    }
    await new Promise((r) => setTimeout(r, 5000));
    const before = stub.requests.length;
    const t0 = Date.now();
    const m = await measure(child.pid!, SECONDS);
    const sent = stub.requests.slice(before);
    const ages = sent.map((r) => r.at - Date.parse(r.query.capturedAt!));
    const rate = sent.length / ((Date.now() - t0) / 1000) / cameras;
    console.log(
      `${label}: ${cameras} camera(s) at target ${fps} fps -> ${r1(rate)} frames/s per camera to infer; relay+ffmpeg CPU ${m.cpuPercentOfCore}% of a core = ${r1(m.cpuPercentOfCore / cameras)}% per camera = ${r1(m.cpuPercentOfCore / cameras / baseline.cpuPercentOfCore)}x full decode; memory (PSS) relay + ffmpeg ${m.rssMb} MB, relay process alone ${m.ownMb} MB; frame age capture->infer p50 ${r1(pct(ages, 50))} ms p95 ${r1(pct(ages, 95))} ms`,
    );
    ws.close();
    await stop(child);
    await new Promise((r) => setTimeout(r, 500));
    return;
  };
  await scenario('keyframe-only', 0.5, 1);
  await scenario('2 fps', 2, 1);
  await scenario('2 fps', 2, 5);
  await stub.close();
  await rtsp.stop();
}

await main();
