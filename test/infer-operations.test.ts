/**
 * Operating the infer service: bearer-token auth, the URL allow-list, backpressure (429 +
 * Retry-After), Prometheus metrics, and graceful shutdown of a busy process on SIGTERM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer } from '@detector-worker/infer/start';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { buildOneBoxDetector } from '@detector-worker/testkit/onnx-builder';
import { writeMpta } from '@detector-worker/testkit/mpta';

let work: string;
let archiveUrl: string;
let jpeg: Buffer;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'infer-ops-'));
  // A 640x640 input makes each request cost real preprocessing, so a burst can queue.
  const model = buildOneBoxDetector({ inputSize: 640, anchors: 4, names: ['thing', 'other'] });
  const archive = await writeMpta(work, 'fake.mpta', { pipeline: { pipeline: { modelId: 'fake', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(model) } });
  archiveUrl = `file://${archive}`;
  jpeg = await sharp({ create: { width: 1280, height: 720, channels: 3, background: '#336699' } }).jpeg().toBuffer();
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

const base = (over: Record<string, unknown> = {}) => ({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, `cache-${Math.random()}`), ...over });

async function infer(url: string, headers: Record<string, string> = {}, query = `?modelUrl=${encodeURIComponent(archiveUrl)}`) {
  const r = await request(`${url}/v1/models/fake/infer${query}`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg', ...headers } });
  return { status: r.statusCode, headers: r.headers, body: (await r.body.json()) as any };
}

test('bearer token: required on the API, not on probes and metrics', async () => {
  const running = await startInfer(base({ token: 's3cret' }), pino({ level: 'silent' }));
  try {
    const denied = await infer(running.url);
    assert.equal(denied.status, 401);
    assert.equal(denied.body.code, 'UNAUTHORIZED');
    assert.equal((await infer(running.url, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await infer(running.url, { authorization: 'Bearer s3cret' })).status, 200);
    assert.equal((await request(`${running.url}/healthz`)).statusCode, 200);
    assert.equal((await request(`${running.url}/v1/models`)).statusCode, 401);
  } finally {
    await running.close();
  }
});

test('MODEL_URL_ALLOW refuses other hosts and file:// can be disabled', async () => {
  const running = await startInfer(base({ modelUrlAllow: ['models.example.internal'], allowFileUrls: false }), pino({ level: 'silent' }));
  try {
    const r1 = await infer(running.url, {}, `?modelUrl=${encodeURIComponent('http://127.0.0.1:9/x.mpta')}`);
    assert.equal(r1.status, 403);
    assert.equal(r1.body.code, 'MODEL_URL_FORBIDDEN');
    const r2 = await infer(running.url);
    assert.equal(r2.status, 403);
  } finally {
    await running.close();
  }
});

test('backpressure: a burst past INFER_MAX_QUEUE gets 429 with Retry-After, the rest are served', async () => {
  const running = await startInfer(base({ maxQueue: 1, workers: 1, intraOpThreads: 1 }), pino({ level: 'silent' }));
  try {
    assert.equal((await infer(running.url)).status, 200);
    const answers = await Promise.all(Array.from({ length: 40 }, () => infer(running.url, {}, '')));
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(refused.length > 0, 'some requests were refused');
    assert.ok(answers.filter((a) => a.status === 200).length > 0, 'some were served');
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200, 429]));
    assert.equal(refused[0]!.headers['retry-after'], '1');
    assert.equal(refused[0]!.body.code, 'OVERLOADED');
    // Still healthy and serving afterwards.
    assert.equal((await infer(running.url, {}, '')).status, 200);
  } finally {
    await running.close();
  }
});

test('a draining instance refuses new inference with 503 SHUTTING_DOWN and is not ready', async () => {
  const running = await startInfer(base(), pino({ level: 'silent' }));
  try {
    assert.equal((await infer(running.url)).status, 200);
    running.service.drain();
    const refused = await infer(running.url, {}, '');
    assert.equal(refused.status, 503);
    assert.equal(refused.body.code, 'SHUTTING_DOWN');
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal((await request(`${running.url}/readyz`)).statusCode, 503);
  } finally {
    await running.close();
  }
});

test('metrics: requests by model and status, loads, queue, in-flight, models', async () => {
  const running = await startInfer(base(), pino({ level: 'silent' }));
  try {
    await infer(running.url);
    await infer(running.url, {}, '?x=1');
    const r = await request(`${running.url}/metrics`);
    assert.match(String(r.headers['content-type']), /text\/plain/);
    const text = await r.body.text();
    assert.match(text, /infer_requests_total\{model="fake",status="200"\} 2/);
    assert.match(text, /infer_request_duration_seconds_bucket\{le="[^"]+",model="fake",status="200"\}/);
    assert.match(text, /infer_model_loads_total 1/);
    assert.match(text, /infer_models_loaded 1/);
    assert.match(text, /infer_queue_depth 0/);
    assert.match(text, /infer_requests_in_flight 0/);
    assert.match(text, /infer_model_load_duration_seconds_count 1/);
    assert.match(text, /infer_model_memory_bytes\{model="fake"\} \d+/);
    assert.match(text, /infer_action_retry_pending 0/);
  } finally {
    await running.close();
  }
});

test('SIGTERM on a busy process: in-flight requests finish, readiness drops, exit code 0', async () => {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn(process.execPath, [join(repoRoot, 'services/infer/dist/main.js')], {
    env: { ...process.env, INFER_PORT: String(port), INFER_HOST: '127.0.0.1', MODEL_CACHE_DIR: join(work, 'cache-sigterm'), LOG_LEVEL: 'warn', LOG_PRETTY: '0', INFER_WORKERS: '1', ORT_INTRA_OP_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 100; i++) {
      const ok = await request(`${url}/readyz`).then(
        (r) => r.body.dump().then(() => r.statusCode === 200),
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await infer(url)).status, 200);
    const inFlight = Array.from({ length: 6 }, () => infer(url, {}, ''));
    // SIGTERM once all six are admitted: a request that only arrives after it is rightly refused (503).
    for (let i = 0; i < 200; i++) {
      const text = await request(`${url}/metrics`).then((r) => r.body.text(), () => '');
      const m = /^infer_requests_in_flight (\d+)/m.exec(text);
      if (m && Number(m[1]) >= 6) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    assert.deepEqual(
      answers.map((a) => a.status),
      answers.map(() => 200),
    );
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
});

test('request body limit (MAX_IMAGE_BYTES) answers 413', async () => {
  const running = await startInfer(base({ maxBodyBytes: 4096 }), pino({ level: 'silent' }));
  try {
    const r = await infer(running.url);
    assert.equal(r.status, 413);
    assert.equal(r.body.code, 'BODY_TOO_LARGE');
  } finally {
    await running.close();
  }
});

test('a model download shows its progress in GET /v1/models/{id} while it loads', async () => {
  const { createServer } = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const archive = await readFile(new URL(archiveUrl));
  const padded = Buffer.concat([archive]);
  // Serve the archive in slices, slowly, with a Content-Length so the percentage is known.
  const server = createServer(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(padded.length) });
    const step = Math.ceil(padded.length / 8);
    for (let i = 0; i < padded.length; i += step) {
      res.write(padded.subarray(i, i + step));
      await new Promise((r) => setTimeout(r, 150));
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const running = await startInfer(base(), pino({ level: 'silent' }));
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/fake.mpta`;
    const load = request(`${running.url}/v1/models/slow`, { method: 'PUT', body: JSON.stringify({ modelUrl: url }), headers: { 'content-type': 'application/json' } });
    let seen: any;
    for (let i = 0; i < 60; i++) {
      const info = (await (await request(`${running.url}/v1/models/slow`)).body.json()) as any;
      if (info.state === 'loading' && info.progress?.percent > 0 && info.progress.percent < 100) {
        seen = info;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(seen, 'progress was visible while downloading');
    assert.equal(seen.progress.totalBytes, padded.length);
    const done = await load;
    assert.equal(done.statusCode, 200);
    await done.body.dump();
  } finally {
    await running.close();
    server.close();
  }
});
