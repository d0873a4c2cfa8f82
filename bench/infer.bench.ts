/**
 * Infer benchmark (issue 2): in one run on one machine,
 *  1. raw `session.run` of yolov8n_fp32 (the physical limit) with one 2-thread session and
 *     with two 1-thread sessions in two threads;
 *  2. the infer service over HTTP with a 1920x1080 JPEG frame of traffic_1080p.mp4, at
 *     concurrency 1 and at saturation, for each pool layout;
 *  3. a cold start: 20 concurrent first requests -> downloads and loads counted;
 *  4. RSS of the infer process with one and with five pipelines loaded.
 * Run: npm run bench:infer   (options: BENCH_SECONDS=20 BENCH_LAYOUTS=1x2,2x1)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { request } from 'undici';
import { fixturePath, repoRoot } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const LAYOUTS = (process.env.BENCH_LAYOUTS ?? '1x2,2x1').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const cores = availableParallelism();

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const r1 = (n: number) => Math.round(n * 10) / 10;

/** Raw session.run in `threads` worker threads, each with its own session of `intra` threads. */
async function rawThroughput(model: string, threads: number, intra: number, seconds: number): Promise<{ fps: number; p50: number }> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const ort = require(workerData.ort);
    (async () => {
      const s = await ort.InferenceSession.create(workerData.model, { intraOpNumThreads: workerData.intra, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
      const input = new ort.Tensor('float32', new Float32Array(3 * 640 * 640).fill(0.5), [1, 3, 640, 640]);
      for (let i = 0; i < 3; i++) await s.run({ [s.inputNames[0]]: input });
      parentPort.postMessage('ready');
      await new Promise((r) => parentPort.once('message', r));
      const end = Date.now() + workerData.seconds * 1000; const lat = [];
      while (Date.now() < end) { const t = performance.now(); await s.run({ [s.inputNames[0]]: input }); lat.push(performance.now() - t); }
      parentPort.postMessage(lat);
    })();`;
  const ortPath = join(repoRoot, 'node_modules', 'onnxruntime-node', 'dist', 'index.js');
  const workers = Array.from({ length: threads }, () => new Worker(code, { eval: true, workerData: { ort: ortPath, model, intra, seconds } }));
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const results = workers.map((w) => new Promise<number[]>((r) => w.once('message', r)));
  workers.forEach((w) => w.postMessage('go'));
  const lat = (await Promise.all(results)).flat();
  await Promise.all(workers.map((w) => w.terminate()));
  return { fps: lat.length / seconds, p50: pct(lat, 50) };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startInfer(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'services/infer/dist/main.js')], {
    env: { ...process.env, INFER_PORT: String(port), INFER_HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_PRETTY: '0', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const r = await request(`${url}/readyz`);
      await r.body.dump();
      if (r.statusCode === 200) return { url, child };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('infer did not start');
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: r1(kb('VmRSS') / 1024), peak: r1(kb('VmHWM') / 1024) };
}

async function inferOnce(url: string, modelId: string, image: Buffer, modelUrl?: string): Promise<{ ms: number; status: number; body: any }> {
  const t = performance.now();
  const q = modelUrl ? `?modelUrl=${encodeURIComponent(modelUrl)}` : '';
  const r = await request(`${url}/v1/models/${modelId}/infer${q}`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg' } });
  const body = await r.body.json();
  return { ms: performance.now() - t, status: r.statusCode, body };
}

async function saturate(url: string, modelId: string, image: Buffer, concurrency: number, seconds: number): Promise<{ rps: number; p50: number; p95: number; errors: number; preprocessP50: number; inferenceP50: number }> {
  const end = Date.now() + seconds * 1000;
  const lat: number[] = [];
  const pre: number[] = [];
  const inf: number[] = [];
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const r = await inferOnce(url, modelId, image);
        if (r.status === 200) {
          lat.push(r.ms);
          pre.push(r.body.timings.preprocess);
          inf.push(r.body.timings.inference);
        } else errors++;
      }
    }),
  );
  return { rps: r1(lat.length / seconds), p50: r1(pct(lat, 50)), p95: r1(pct(lat, 95)), errors, preprocessP50: r1(pct(pre, 50)), inferenceP50: r1(pct(inf, 50)) };
}

async function main(): Promise<void> {
  const model = fixturePath('models/yolov8n_fp32.onnx');
  const video = fixturePath('video/traffic_1080p.mp4');
  const work = mkdtempSync(join(tmpdir(), 'infer-bench-'));
  const frame = join(work, 'frame.jpg');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-ss', '10', '-i', video, '-frames:v', '1', '-q:v', '3', frame]);
  const image = readFileSync(frame);
  const pipeline = { pipeline: { modelId: 'vehicles', modelFile: 'yolov8n_fp32.onnx', minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'] } };
  const archive = await writeMpta(work, 'detector.mpta', { pipeline, files: { 'yolov8n_fp32.onnx': readFileSync(model) } });
  const modelUrl = `file://${archive}`;
  const out: string[] = [];
  const log = (line: string) => {
    out.push(line);
    console.log(line);
  };
  log(`machine: ${cores} cores, node ${process.version}; frame ${image.length} bytes 1920x1080; ${SECONDS} s per measurement`);

  const raw2 = await rawThroughput(model, 1, 2, SECONDS);
  const raw11 = await rawThroughput(model, 2, 1, SECONDS);
  const rawBest = Math.max(raw2.fps, raw11.fps);
  /** Raw session.run latency of the layout's thread count (1 thread or 2). */
  const rawLatency = (intra: number) => (intra >= 2 ? raw2.p50 : raw11.p50);
  log(`raw session.run: 1 session x 2 threads ${r1(raw2.fps)} fps (p50 ${r1(raw2.p50)} ms); 2 sessions x 1 thread ${r1(raw11.fps)} fps (p50 ${r1(raw11.p50)} ms)`);

  for (const [workers, intra] of LAYOUTS) {
    const { url, child } = await startInfer({ INFER_WORKERS: String(workers), ORT_INTRA_OP_THREADS: String(intra), MODEL_CACHE_DIR: join(work, `cache-${workers}x${intra}`) });
    const first = await inferOnce(url, 'vehicles', image, modelUrl);
    if (first.status !== 200) throw new Error(`first request failed: ${JSON.stringify(first.body)}`);
    for (let i = 0; i < 5; i++) await inferOnce(url, 'vehicles', image);
    const c1 = await saturate(url, 'vehicles', image, 1, SECONDS);
    const sat = await saturate(url, 'vehicles', image, workers * 2 + 2, SECONDS);
    log(
      `service ${workers} worker(s) x ${intra} thread(s): c=1 p50 ${c1.p50} ms p95 ${c1.p95} ms (${c1.rps} rps); saturated (c=${workers * 2 + 2}) ${sat.rps} rps p50 ${sat.p50} ms p95 ${sat.p95} ms, errors ${sat.errors}; ` +
        `throughput ${r1((sat.rps / rawBest) * 100)}% of raw best (target >= 90%), c=1 p50 - raw p50 (${intra} thread) = ${r1(c1.p50 - rawLatency(intra))} ms (target <= 10); c=1 server-side preprocess p50 ${c1.preprocessP50} ms, inference p50 ${c1.inferenceP50} ms`,
    );
    log(`  timings of one request: ${JSON.stringify(first.body.timings.nodes)}; RSS ${JSON.stringify(rssMb(child.pid!))} MB with one pipeline`);
    await stop(child);
  }

  // Cold start: 20 concurrent first requests.
  {
    const [workers, intra] = LAYOUTS[0]!;
    const { url, child } = await startInfer({ INFER_WORKERS: String(workers), ORT_INTRA_OP_THREADS: String(intra), MODEL_CACHE_DIR: join(work, 'cache-cold') });
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: 20 }, () => inferOnce(url, 'vehicles', image, modelUrl)));
    const coldMs = performance.now() - t0;
    const stats = (await (await request(`${url}/v1/models`)).body.json()) as { stats: { downloads: number; loads: number } };
    log(`cold start: 20 concurrent first requests -> ${answers.filter((a) => a.status === 200).length} x 200 in ${Math.round(coldMs)} ms; downloads ${stats.stats.downloads}, loads ${stats.stats.loads} (target 1 and 1)`);
    const one = rssMb(child.pid!);
    for (let i = 2; i <= 5; i++) {
      const r = await request(`${url}/v1/models/vehicles${i}`, { method: 'PUT', body: JSON.stringify({ modelUrl }), headers: { 'content-type': 'application/json' } });
      await r.body.dump();
      await inferOnce(url, `vehicles${i}`, image);
    }
    const five = rssMb(child.pid!);
    log(`RSS (${workers}x${intra}): one pipeline ${one.rss} MB (peak ${one.peak}); five pipelines ${five.rss} MB (peak ${five.peak})`);
    await stop(child);
  }
  rmSync(work, { recursive: true, force: true });
}

await main();
