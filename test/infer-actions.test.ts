/**
 * End to end (issue 3): a pipeline with both fixture models and all three action types runs
 * through the HTTP API against real Redis and PostgreSQL; the records are checked afterwards.
 * A retried request (same requestId) updates instead of duplicating.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import sharp from 'sharp';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { fixture } from '@detector-worker/testkit/fixtures';
import { standardMptaSpec, writeMpta, standardPipeline } from '@detector-worker/testkit/mpta';
import { postgresForTests, redisForTests, type PostgresServerConfig, type RedisServerConfig, type TestServer } from '@detector-worker/testkit/servers';

const run = randomBytes(4).toString('hex');
const schema = `dw_test_${run}`;
let work: string;
let infer: RunningInfer;
let redisServer: TestServer<RedisServerConfig>;
let pgServer: TestServer<PostgresServerConfig>;
let redis: Redis;
let db: pg.Client;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'infer-actions-'));
  redisServer = await redisForTests();
  pgServer = await postgresForTests();
  redis = new Redis(redisServer.url);
  db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  infer = await startInfer({ ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache') }, pino({ level: 'silent' }));
});

after(async () => {
  await infer?.close();
  await db?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await db?.end();
  if (redis) {
    const keys = await redis.keys(`dwtest:${run}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  await redisServer?.stop();
  await pgServer?.stop();
  await rm(work, { recursive: true, force: true });
});

test('detector + classifier with redis_save_image, redis_publish and postgresql_update_combined over HTTP', async (t) => {
  const photo = fixture(t, 'images/parking_plate_1080p.jpg');
  if (!photo) return;
  const file = standardPipeline();
  const root = file.pipeline;
  root.multiClass = true;
  root.expectedClasses = ['car'];
  root.actions = [
    { type: 'redis_save_image', region: 'car', key: `dwtest:${run}:{display_id}:{session_id}:{filename}`, expire_seconds: 600, format: 'jpeg', quality: 85 },
    { type: 'redis_publish', channel: `dwtest:${run}:events`, message: '{"event":"car_detected","class":"{class}","display":"{display_id}","session":"{session_id}","image":"{image_key}"}' },
  ];
  root.parallelActions = [
    {
      type: 'postgresql_update_combined',
      table: 'car_frontal_info',
      key_field: 'session_id',
      key_value: '{session_id}',
      waitForBranches: ['car_color_cls_v1'],
      fields: { car_body_type: '{car_color_cls_v1.color}', car_model: '{vehicle_det_v1.class}', updated_at: 'NOW()' },
    },
  ];
  const r = redisServer.config;
  const p = pgServer.config;
  const spec = await standardMptaSpec(t, {
    pipeline: {
      ...file,
      redis: { host: r.host, port: r.port, db: r.db, ...(r.password ? { password: r.password } : {}) },
      postgresql: { host: p.host, port: p.port, database: p.database, username: p.user, password: p.password ?? '' },
      initialRecord: { table: `${schema}.car_frontal_info`, triggerClasses: ['car'] },
    },
  });
  if (!spec) return;
  // The upsert names the same schema as the initial record.
  (spec.pipeline as any).pipeline.parallelActions[0].table = `${schema}.car_frontal_info`;
  const archive = await writeMpta(work, 'actions.mpta', spec);

  const subscriber = new Redis(redisServer.url);
  const messages: string[] = [];
  subscriber.on('message', (_channel: string, message: string) => messages.push(message));
  await subscriber.subscribe(`dwtest:${run}:events`);
  try {
    const body = await readFile(photo);
    const send = async () => {
      const res = await request(`${infer.url}/v1/models/actions/infer?modelUrl=${encodeURIComponent(`file://${archive}`)}&subscriptionIdentifier=display-7;cam-1&requestId=req-${run}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'image/jpeg' },
      });
      return { status: res.statusCode, body: (await res.body.json()) as any };
    };
    const first = await send();
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const outcomes = Object.fromEntries(first.body.actions.map((a: any) => [a.type, a]));
    for (const type of ['initial_record', 'redis_save_image', 'redis_publish', 'postgresql_update_combined']) assert.equal(outcomes[type]?.status, 'ok', JSON.stringify(first.body.actions));
    const sessionId = first.body.result.session_id;
    assert.match(sessionId, /^[0-9a-f-]{36}$/);

    // The saved crop: TTL set, decodes to the car region's size.
    const key = outcomes.redis_save_image.target as string;
    assert.ok(key.startsWith(`dwtest:${run}:display-7:${sessionId}:`), key);
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= 600, `ttl ${ttl}`);
    const saved = await redis.getBuffer(key);
    const meta = await sharp(saved!).metadata();
    const [x1, y1, x2, y2] = first.body.result.regions.car.bbox;
    assert.ok(Math.abs(meta.width! - (x2 - x1)) <= 2 && Math.abs(meta.height! - (y2 - y1)) <= 2, `${meta.width}x${meta.height} vs ${x2 - x1}x${y2 - y1}`);

    // The published message is JSON with the rendered values.
    for (let i = 0; i < 50 && messages.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    const event = JSON.parse(messages[0]!);
    assert.deepEqual(event, { event: 'car_detected', class: 'car', display: 'display-7', session: sessionId, image: key });

    // One row with the classifier's answer.
    const colour = first.body.result.branch_results.car_color_cls_v1.color;
    const rows = await db.query(`SELECT * FROM "${schema}".car_frontal_info`);
    assert.equal(rows.rowCount, 1);
    assert.equal(rows.rows[0].session_id, sessionId);
    assert.equal(rows.rows[0].display_id, 'display-7');
    assert.equal(rows.rows[0].car_body_type, colour);

    // A retry of the same request: same session, still one row.
    const again = await send();
    assert.equal(again.status, 200);
    assert.equal(again.body.result.session_id, sessionId);
    assert.equal((await db.query(`SELECT count(*)::int AS n FROM "${schema}".car_frontal_info`)).rows[0].n, 1);
  } finally {
    subscriber.disconnect();
  }
});

test('with Redis and PostgreSQL unreachable, inference results still come back and the actions say why they failed', async (t) => {
  const spec = await standardMptaSpec(t, {
    pipeline: {
      ...standardPipeline(),
      redis: { host: '127.0.0.1', port: 9, db: 0 },
      postgresql: { host: '127.0.0.1', port: 9, database: 'x', username: 'x', password: 'secret-pw' },
    },
  });
  if (!spec) return;
  const photo = fixture(t, 'images/parking_plate_1080p.jpg');
  if (!photo) return;
  (spec.pipeline as any).pipeline.actions = [{ type: 'redis_publish', channel: 'c', message: '{"a":"{class}"}' }];
  const archive = await writeMpta(work, 'down.mpta', spec);
  const res = await request(`${infer.url}/v1/models/down/infer?modelUrl=${encodeURIComponent(`file://${archive}`)}`, { method: 'POST', body: await readFile(photo), headers: { 'content-type': 'image/jpeg' } });
  const body = (await res.body.json()) as any;
  assert.equal(res.statusCode, 200, JSON.stringify(body));
  assert.equal(body.result.class, 'car');
  const publish = body.actions.find((a: any) => a.type === 'redis_publish');
  assert.equal(publish.status, 'failed');
  assert.ok(publish.reason);
  assert.ok(!JSON.stringify(body).includes('secret-pw'), 'no credentials in the answer');
});
