/**
 * Cost of the actions per event against real local servers: initial record, then
 * redis_save_image (crop + JPEG encode + SET EX), redis_publish and
 * postgresql_update_combined, the original car pipeline's set. Prints p50/p95 in ms.
 *
 *   npm run build && node bench/dist/action-runner.bench.js [events=300]
 *
 * Uses REDIS_URL / DATABASE_URL or the local servers (see testkit/src/servers.ts) with its
 * own key prefix and schema, removed afterwards.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { createLogger } from '@detector-worker/shared/logging';
import { postgresForTests, redisForTests } from '@detector-worker/testkit/servers';
import type { ActionOutcome } from '@detector-worker/infer/pipeline/types';
import { createActionRunner } from '@detector-worker/infer/actions/runner';
import { carFrontalNode, fakeImage, makeEvent } from '@detector-worker/testkit/action-events';

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function summary(values: number[]): { p50: number; p95: number; mean: number } {
  const s = [...values].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return { p50: round(percentile(s, 50)), p95: round(percentile(s, 95)), mean: round(s.reduce((a, b) => a + b, 0) / (s.length || 1)) };
}

async function main(): Promise<void> {
  const events = Number(process.argv[2] ?? 300);
  const warmup = 20;
  const run = `dw_bench_${process.pid}_${Date.now().toString(36)}`;
  const redisServer = await redisForTests();
  const pgServer = await postgresForTests();
  const r = redisServer.config;
  const p = pgServer.config;
  const runner = createActionRunner({ logger: createLogger('bench-actions', { level: 'warn' }), retry: { maxQueued: 1000, baseDelayMs: 100, maxDelayMs: 5000 }, defaults: { schema: run } });
  runner.attach('bench', {
    redis: { host: r.host, port: r.port, db: r.db, ...(r.password ? { password: r.password } : {}) },
    postgresql: { host: p.host, port: p.port, database: p.database, username: p.user, password: p.password ?? '' },
  });
  const node = carFrontalNode({
    actions: [
      { type: 'redis_save_image', region: 'Frontal', key: `${run}:inference:{display_id}:{timestamp}:{session_id}:{filename}`, expire_seconds: 60, format: 'jpeg', quality: 90 },
      { type: 'redis_publish', channel: `${run}:car_detections`, message: '{"event":"frontal_detected","display_id":"{display_id}","session_id":"{session_id}","timestamp":"{timestamp}","image_key":"{image_key}"}' },
    ],
    parallelActions: [
      {
        type: 'postgresql_update_combined',
        table: 'car_frontal_info',
        key_field: 'session_id',
        key_value: '{session_id}',
        waitForBranches: ['car_brand_cls_v1', 'car_bodytype_cls_v1'],
        fields: { car_brand: '{car_brand_cls_v1.brand}', car_body_type: '{car_bodytype_cls_v1.body_type}' },
      },
    ],
  });
  // A 1280x720 frame; the Frontal crop is 400x250, the Car 900x500.
  const image = await fakeImage(1280, 720);
  const regions = {
    Car: { bbox: [100, 150, 1000, 650] as [number, number, number, number], confidence: 0.93 },
    Frontal: { bbox: [350, 350, 750, 600] as [number, number, number, number], confidence: 0.9 },
  };
  const per: Record<string, number[]> = { initial_record: [], redis_save_image: [], redis_publish: [], postgresql_update_combined: [] };
  const totals: number[] = [];
  const saveAndPublishAndUpsert: number[] = [];
  let failures = 0;
  try {
    for (let i = 0; i < warmup + events; i++) {
      const event = makeEvent({ pipelineKey: 'bench', image, node, regions, request: { subscriptionIdentifier: 'display-001;cam-001', requestId: `${run}-${i}` } });
      const started = performance.now();
      const outcomes: ActionOutcome[] = [];
      const initial = await runner.initialRecord(event);
      if (initial) outcomes.push(initial);
      outcomes.push(...(await runner.run(node.actions!, event)));
      event.branchResults = {
        car_brand_cls_v1: { class: 'Toyota', confidence: 0.9, id: null, brand: 'Toyota' },
        car_bodytype_cls_v1: { class: 'Sedan', confidence: 0.9, id: null, body_type: 'Sedan' },
      };
      outcomes.push(...(await runner.run(node.parallelActions!, event)));
      const total = performance.now() - started;
      if (i < warmup) continue;
      failures += outcomes.filter((o) => o.status !== 'ok').length;
      totals.push(total);
      for (const o of outcomes) per[o.type]?.push(o.durationMs ?? 0);
      saveAndPublishAndUpsert.push(outcomes.filter((o) => o.type !== 'initial_record').reduce((a, o) => a + (o.durationMs ?? 0), 0));
    }
  } finally {
    await runner.close();
    const redis = new Redis({ host: r.host, port: r.port, db: r.db, ...(r.password ? { password: r.password } : {}) });
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${run}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    const db = new pg.Pool({ host: p.host, port: p.port, database: p.database, user: p.user, ...(p.password ? { password: p.password } : {}), max: 1 });
    await db.query(`DROP SCHEMA IF EXISTS "${run}" CASCADE`);
    await db.end();
    await redisServer.stop();
    await pgServer.stop();
  }
  const result = {
    events,
    failures,
    servers: { redis: redisServer.origin, postgresql: pgServer.origin },
    frame: '1280x720, Frontal crop 400x250 JPEG q90',
    'save+publish+upsert ms': summary(saveAndPublishAndUpsert),
    'all actions incl. initial record ms': summary(totals),
    perAction: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, summary(v)])),
  };
  console.log(JSON.stringify(result, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
