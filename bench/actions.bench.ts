/**
 * Actions benchmark (issue 3): the infer service over HTTP with the same detector pipeline
 * with and without actions (redis_save_image + redis_publish + postgresql_update_combined
 * against real local servers), at concurrency 1 and at saturation.
 * Run: npm run build && node bench/dist/actions.bench.js   (BENCH_SECONDS=15)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer } from '@detector-worker/infer/start';
import { fixturePath } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';
import { postgresForTests, redisForTests } from '@detector-worker/testkit/servers';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))] ?? NaN;
const r1 = (n: number) => Math.round(n * 10) / 10;

async function load(url: string, model: string, image: Buffer, concurrency: number, seconds: number) {
  const end = Date.now() + seconds * 1000;
  const lat: number[] = [];
  const actionMs: number[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        const r = await request(`${url}/v1/models/${model}/infer?sessionId=s-${n++ % 50}`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg' } });
        const body = (await r.body.json()) as { timings: { actions: number }; actions: Array<{ status: string }> };
        if (r.statusCode !== 200) throw new Error(JSON.stringify(body));
        lat.push(performance.now() - t);
        actionMs.push(body.timings.actions);
      }
    }),
  );
  return { rps: lat.length / seconds, p50: pct(lat, 50), actionsP50: pct(actionMs, 50), actionsP95: pct(actionMs, 95) };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'actions-bench-'));
  const frame = join(work, 'frame.jpg');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-ss', '10', '-i', fixturePath('video/traffic_1080p.mp4'), '-frames:v', '1', '-q:v', '3', frame]);
  const image = readFileSync(frame);
  const redisServer = await redisForTests();
  const pgServer = await postgresForTests();
  const schema = `bench_${randomBytes(3).toString('hex')}`;
  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  await db.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".cars (session_id text PRIMARY KEY, car_model text, updated_at timestamp DEFAULT now())`);
  const detector = { modelId: 'vehicles', modelFile: 'yolov8n_fp32.onnx', minConfidence: 0.25, triggerClasses: ['car', 'truck', 'bus'] };
  const files = { 'yolov8n_fp32.onnx': readFileSync(fixturePath('models/yolov8n_fp32.onnx')) };
  const plain = await writeMpta(work, 'plain.mpta', { pipeline: { pipeline: detector }, files });
  const r = redisServer.config;
  const p = pgServer.config;
  const servers = {
    redis: { host: r.host, port: r.port, db: r.db },
    postgresql: { host: p.host, port: p.port, database: p.database, username: p.user, password: p.password ?? '' },
  };
  const upsert = { type: 'postgresql_update_combined', table: `${schema}.cars`, key_field: 'session_id', key_value: '{session_id}', waitForBranches: [], fields: { car_model: '{class}', updated_at: 'NOW()' } };
  const withActions = await writeMpta(work, 'actions.mpta', {
    pipeline: {
      ...servers,
      pipeline: {
        ...detector,
        actions: [
          { type: 'redis_save_image', region: 'car', key: `bench:${schema}:{session_id}:{filename}`, expire_seconds: 60 },
          { type: 'redis_publish', channel: `bench:${schema}`, message: '{"event":"car","session":"{session_id}","image":"{image_key}"}' },
        ],
        parallelActions: [upsert],
      },
    },
    files,
  });
  const noImage = await writeMpta(work, 'noimage.mpta', {
    pipeline: {
      ...servers,
      pipeline: {
        ...detector,
        actions: [{ type: 'redis_publish', channel: `bench:${schema}`, message: '{"event":"car","session":"{session_id}"}' }],
        parallelActions: [upsert],
      },
    },
    files,
  });
  const infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'warn' }));
  for (const [id, archive] of [
    ['plain', plain],
    ['actions', withActions],
    ['noimage', noImage],
  ] as const) {
    const res = await request(`${infer.url}/v1/models/${id}`, { method: 'PUT', body: JSON.stringify({ modelUrl: `file://${archive}` }), headers: { 'content-type': 'application/json' } });
    await res.body.dump();
  }
  console.log(`machine idle check: run with nothing else on the 2 cores; ${SECONDS} s per measurement`);
  for (const concurrency of [1, 6]) {
    const off = await load(infer.url, 'plain', image, concurrency, SECONDS);
    for (const [label, model] of [
      ['save+publish+upsert', 'actions'],
      ['publish+upsert', 'noimage'],
    ] as const) {
      const on = await load(infer.url, model, image, concurrency, SECONDS);
      console.log(
        `c=${concurrency} ${label}: off ${r1(off.rps)} rps p50 ${r1(off.p50)} ms | on ${r1(on.rps)} rps p50 ${r1(on.p50)} ms, actions p50 ${r1(on.actionsP50)} ms p95 ${r1(on.actionsP95)} ms | throughput change ${r1(((on.rps - off.rps) / off.rps) * 100)}% (target >= -5%)`,
      );
    }
  }
  await infer.close();
  const redis = new Redis(redisServer.url);
  const keys = await redis.keys(`bench:${schema}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await db.query(`DROP SCHEMA "${schema}" CASCADE`);
  await db.end();
  await redisServer.stop();
  await pgServer.stop();
  rmSync(work, { recursive: true, force: true });
}

await main();
