/**
 * The action layer against the machine's Redis and PostgreSQL (or REDIS_URL / DATABASE_URL,
 * or throwaway servers). Every run uses its own key prefix and schema and removes them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import pg from 'pg';
import sharp from 'sharp';
import { createLogger } from '@detector-worker/shared/logging';
import type { Action, PipelineNode, PostgresConfig, RedisConfig } from '@detector-worker/shared/pipeline/schema';
import { postgresForTests, redisForTests, type PostgresServerConfig, type RedisServerConfig, type TestServer } from '@detector-worker/testkit/servers';
import type { ActionEvent, ActionOutcome, RequestContext } from '@detector-worker/infer/pipeline/types';
import { createActionRunner, type StatefulActionRunner } from '@detector-worker/infer/actions/runner';
import { carFrontalNode, fakeImage, makeEvent } from '@detector-worker/testkit/action-events';

const RUN = `dw_t_${process.pid}_${Date.now().toString(36)}`;
const logLines: string[] = [];
const logger = createLogger('actions-test', { level: 'debug', hooks: { streamWrite: (s: string) => (logLines.push(s), '') } });

let redisServer: TestServer<RedisServerConfig>;
let pgServer: TestServer<PostgresServerConfig>;
let redisConfig: RedisConfig;
let pgConfig: PostgresConfig;
let redis: Redis;
let db: pg.Pool;
let runner: StatefulActionRunner;

function pipelineNode(): PipelineNode {
  return carFrontalNode({
    actions: [
      { type: 'redis_save_image', region: 'Frontal', key: `${RUN}:inference:{display_id}:{timestamp}:{session_id}:{filename}`, expire_seconds: 600, format: 'jpeg', quality: 90 },
      {
        type: 'redis_publish',
        channel: `${RUN}:car_detections`,
        message: '{"event":"frontal_detected","class":"{class}","display_id":"{display_id}","session_id":"{session_id}","image_key":"{image_key}","confidence":{confidence}}',
      },
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
}

async function carEvent(pipelineKey: string, node: PipelineNode, request: RequestContext, brand: string, body: string, detectionClass = 'Car'): Promise<{ event: ActionEvent; outcomes: ActionOutcome[] }> {
  const event = makeEvent({ pipelineKey, image: await fakeImage(), node, request, detectionClass });
  const outcomes: ActionOutcome[] = [];
  const initial = await runner.initialRecord(event);
  if (initial) outcomes.push(initial);
  outcomes.push(...(await runner.run(node.actions ?? [], event)));
  event.branchResults = {
    car_brand_cls_v1: { class: brand, confidence: 0.9, id: null, brand },
    car_bodytype_cls_v1: { class: body, confidence: 0.8, id: null, body_type: body },
  };
  outcomes.push(...(await runner.run(node.parallelActions ?? [], event)));
  return { event, outcomes };
}

function statuses(outcomes: ActionOutcome[]): string[] {
  return outcomes.map((o) => `${o.type}:${o.status}`);
}

before(async () => {
  redisServer = await redisForTests();
  pgServer = await postgresForTests();
  const r = redisServer.config;
  redisConfig = { host: r.host, port: r.port, db: r.db, ...(r.password ? { password: r.password } : {}) };
  const p = pgServer.config;
  pgConfig = { host: p.host, port: p.port, database: p.database, username: p.user, password: p.password ?? '' };
  redis = new Redis({ host: r.host, port: r.port, db: r.db, ...(r.password ? { password: r.password } : {}) });
  db = new pg.Pool({ host: p.host, port: p.port, database: p.database, user: p.user, ...(p.password ? { password: p.password } : {}), max: 2 });
  runner = createActionRunner({ logger, retry: { maxQueued: 100, baseDelayMs: 50, maxDelayMs: 1000 }, defaults: { schema: RUN } });
  runner.attach('main', { redis: redisConfig, postgresql: pgConfig });
});

after(async () => {
  await runner?.close();
  if (redis) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${RUN}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  if (db) {
    await db.query(`DROP SCHEMA IF EXISTS "${RUN}" CASCADE`);
    await db.query(`DROP SCHEMA IF EXISTS "${RUN}_other" CASCADE`);
    await db.end();
  }
  await redisServer?.stop();
  await pgServer?.stop();
});

describe('actions on real servers', () => {
  test('the full car pipeline: image saved with TTL, event published, row upserted', async () => {
    const node = pipelineNode();
    const sub = redis.duplicate();
    const received: string[] = [];
    sub.on('message', (_channel: string, message: string) => received.push(message));
    await sub.subscribe(`${RUN}:car_detections`);
    try {
      const { event, outcomes } = await carEvent('main', node, { subscriptionIdentifier: 'display-001;cam-001', requestId: 'req-full' }, 'Toyota', 'Sedan', 'Car "GT"');
      assert.deepEqual(statuses(outcomes), ['initial_record:ok', 'redis_save_image:ok', 'redis_publish:ok', 'postgresql_update_combined:ok'], JSON.stringify(outcomes));
      const sessionId = String(event.context.session_id);
      assert.match(sessionId, /^[0-9a-f-]{36}$/);

      // The crop of the Frontal region (100x50) under the rendered key, expiring in 600 s.
      const key = String(event.context.image_key);
      assert.equal(key, `${RUN}:inference:display-001:${event.context.timestamp}:${sessionId}:${event.context.uuid}.jpg`);
      const ttl = await redis.ttl(key);
      assert.ok(ttl > 0 && ttl <= 600, `ttl ${ttl}`);
      const meta = await sharp((await redis.getBuffer(key))!).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.deepEqual([meta.width, meta.height], [100, 50]);

      // The published message is JSON, the quote in the class name escaped.
      for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(received.length, 1);
      const msg = JSON.parse(received[0]!);
      assert.deepEqual(msg, { event: 'frontal_detected', class: 'Car "GT"', display_id: 'display-001', session_id: sessionId, image_key: key, confidence: 0.91 });

      const rows = await db.query(`SELECT * FROM "${RUN}".car_frontal_info WHERE session_id = $1`, [sessionId]);
      assert.equal(rows.rowCount, 1);
      assert.equal(rows.rows[0].car_brand, 'Toyota');
      assert.equal(rows.rows[0].car_body_type, 'Sedan');
      assert.equal(rows.rows[0].display_id, 'display-001');
      assert.match(rows.rows[0].captured_timestamp, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d$/);
      assert.equal(rows.rows[0].license_type, 'No model available');
    } finally {
      sub.disconnect();
    }
  });

  test('a repeated request updates its row instead of adding a second session', async () => {
    const node = pipelineNode();
    const request = { subscriptionIdentifier: 'display-002;cam-9', requestId: 'req-retried' };
    const first = await carEvent('main', node, request, 'Honda', 'SUV');
    const second = await carEvent('main', node, request, 'Mazda', 'Hatchback');
    assert.equal(first.event.context.session_id, second.event.context.session_id);
    assert.equal(first.event.context.image_key, second.event.context.image_key, 'same requestId, same uuid, same image key');
    const rows = await db.query(`SELECT session_id, car_brand, car_body_type FROM "${RUN}".car_frontal_info WHERE display_id = 'display-002'`);
    assert.equal(rows.rowCount, 1);
    assert.deepEqual(rows.rows[0], { session_id: first.event.context.session_id, car_brand: 'Mazda', car_body_type: 'Hatchback' });
    // Without a request id every event is its own session.
    const a = await carEvent('main', node, { subscriptionIdentifier: 'display-003;c' }, 'A', 'B');
    const b = await carEvent('main', node, { subscriptionIdentifier: 'display-003;c' }, 'A', 'B');
    assert.notEqual(a.event.context.session_id, b.event.context.session_id);
  });

  test('region choice: case-insensitive match, full image when missing or absent, png', async () => {
    const image = await fakeImage(320, 240);
    const actions: Action[] = [
      { type: 'redis_save_image', region: 'frontal', key: `${RUN}:r1:{uuid}`, format: 'png' },
      { type: 'redis_save_image', region: 'Plate', key: `${RUN}:r2:{uuid}` },
      { type: 'redis_save_image', key: `${RUN}:r3:{uuid}`, expire_seconds: 5 },
    ];
    const event = makeEvent({ pipelineKey: 'main', image });
    const outcomes = await runner.run(actions, event);
    assert.deepEqual(outcomes.map((o) => o.status), ['ok', 'ok', 'ok']);
    const size = async (o: ActionOutcome) => {
      const m = await sharp((await redis.getBuffer(o.target!))!).metadata();
      return [m.format, m.width, m.height];
    };
    assert.deepEqual(await size(outcomes[0]!), ['png', 100, 50]);
    assert.deepEqual(await size(outcomes[1]!), ['jpeg', 320, 240]);
    assert.deepEqual(await size(outcomes[2]!), ['jpeg', 320, 240]);
    assert.equal(await redis.ttl(outcomes[0]!.target!), -1, 'no expire_seconds: plain SET');
    assert.equal(event.context.image_key, outcomes[2]!.target);
  });

  test('update rules: waits for branches, leaves out unresolved fields, NOW(), schema-qualified tables', async () => {
    await db.query(`CREATE SCHEMA IF NOT EXISTS "${RUN}_other"`);
    await db.query(`CREATE TABLE "${RUN}_other".plates (session_id text PRIMARY KEY, plate text, color text, seen_at timestamptz)`);
    const event = makeEvent({ pipelineKey: 'main', image: await fakeImage(), request: { sessionId: 'sess-rules' } });
    const update = (fields: Record<string, string>, waitForBranches: string[] = []): Action => ({ type: 'postgresql_update_combined', table: `${RUN}_other.plates`, key_field: 'session_id', key_value: '{session_id}', waitForBranches, fields });

    let [o] = await runner.run([update({ plate: '{plate_v1.plate}' }, ['plate_v1'])], event);
    assert.equal(o!.status, 'skipped');
    assert.match(o!.reason!, /plate_v1/);

    event.branchResults = { plate_v1: { class: 'AB-123', confidence: 0.7, id: null, plate: 'AB-123' } };
    [o] = await runner.run([update({ plate: '{plate_v1.plate}', color: '{color_v1.color}', seen_at: 'NOW()' }, ['plate_v1'])], event);
    assert.equal(o!.status, 'ok', o!.reason);
    assert.match(o!.reason!, /left out unresolved fields: color/);
    const row = (await db.query(`SELECT plate, color, seen_at FROM "${RUN}_other".plates WHERE session_id = 'sess-rules'`)).rows[0];
    assert.equal(row.plate, 'AB-123');
    assert.equal(row.color, null);
    assert.ok(row.seen_at instanceof Date);

    [o] = await runner.run([update({ color: '{color_v1.color}', seen_at: 'NOW()' })], event);
    assert.equal(o!.status, 'skipped');
    assert.match(o!.reason!, /no field could be resolved: color/);

    event.context.session_id = null;
    [o] = await runner.run([update({ plate: 'x' })], event);
    assert.equal(o!.status, 'skipped');
    assert.match(o!.reason!, /key_value "\{session_id\}" has no value/);
  });

  test('injection attempts are refused with reasons and nothing executes', async () => {
    await db.query(`CREATE TABLE IF NOT EXISTS "${RUN}".canary (session_id text PRIMARY KEY, note text)`);
    await db.query(`INSERT INTO "${RUN}".canary VALUES ('c1', 'alive') ON CONFLICT DO NOTHING`);
    const event = makeEvent({ pipelineKey: 'main', image: await fakeImage(), request: { sessionId: 'sess-inj' } });
    const attempt = (table: string, fields: Record<string, string>, key_field = 'session_id'): Action => ({ type: 'postgresql_update_combined', table, key_field, key_value: '{session_id}', waitForBranches: [], fields });
    const outcomes = await runner.run(
      [
        attempt('canary; DROP TABLE canary', { note: 'x' }),
        attempt(`${RUN}.canary; DROP TABLE "${RUN}".canary`, { note: 'x' }),
        attempt('canary', { 'note" = \'pwned\', "session_id': 'x' }),
        attempt('canary', { note: 'x' }, 'session_id) DO NOTHING; DROP TABLE canary; --'),
        attempt(`${RUN}.canary.extra`, { note: 'x' }),
      ],
      event,
    );
    for (const o of outcomes) {
      assert.equal(o.status, 'failed');
      assert.match(o.reason!, /^refused: .*(not a plain SQL identifier|must be "table" or "schema.table")/);
    }
    assert.match(outcomes[0]!.reason!, /table "canary; DROP TABLE canary" is not a plain SQL identifier/);

    // SQL inside a template value is only data: bound, stored verbatim.
    event.branchResults = { b: { class: 'x', confidence: 1, id: null, brand: `'); DROP TABLE "${RUN}".canary; --` } };
    const [ok] = await runner.run([attempt('canary', { note: '{b.brand}' })], event);
    assert.equal(ok!.status, 'ok', ok!.reason);
    const rows = (await db.query(`SELECT session_id, note FROM "${RUN}".canary ORDER BY session_id`)).rows;
    assert.deepEqual(rows, [
      { session_id: 'c1', note: 'alive' },
      { session_id: 'sess-inj', note: `'); DROP TABLE "${RUN}".canary; --` },
    ]);

    // Redis: a value with protocol characters is just bytes of the key.
    const evil = makeEvent({ pipelineKey: 'main', image: await fakeImage(), detectionClass: 'x\r\nFLUSHALL\r\n' });
    const [saved] = await runner.run([{ type: 'redis_save_image', key: `${RUN}:evil:{class}`, expire_seconds: 60 }], evil);
    assert.equal(saved!.status, 'ok');
    assert.equal(await redis.exists(`${RUN}:evil:x\r\nFLUSHALL\r\n`), 1);
  });

  test('connections are shared per server and closed when no pipeline uses them', async () => {
    const own = createActionRunner({ logger, retry: { maxQueued: 10, baseDelayMs: 10, maxDelayMs: 100 }, defaults: { schema: RUN } });
    try {
      own.attach('p1', { redis: redisConfig, postgresql: pgConfig });
      own.attach('p2', { redis: { ...redisConfig }, postgresql: { ...pgConfig } });
      own.attach('p3', { redis: { ...redisConfig, db: (redisConfig.db ?? 0) === 0 ? 1 : 0 } });
      assert.deepEqual(own.stats().connections, { redis: 2, postgresql: 1 });
      const [o] = await own.run([{ type: 'redis_publish', channel: `${RUN}:c`, message: 'hi' }], makeEvent({ pipelineKey: 'p2', image: await fakeImage() }));
      assert.equal(o!.status, 'ok');
      await own.detach('p1');
      assert.deepEqual(own.stats().connections, { redis: 2, postgresql: 1 });
      await own.detach('p2');
      await own.detach('p3');
      assert.deepEqual(own.stats().connections, { redis: 0, postgresql: 0 });
    } finally {
      await own.close();
    }
  });

  test('misconfigured actions fail with a reason and the next action still runs; stats count them', async () => {
    const own = createActionRunner({ logger, retry: { maxQueued: 10, baseDelayMs: 10, maxDelayMs: 100 } });
    try {
      own.attach('bare', {});
      const event = makeEvent({ pipelineKey: 'bare', image: await fakeImage() });
      assert.equal(await own.initialRecord(event), null, 'no postgresql: no initial record');
      const outcomes = await own.run(
        [
          { type: 'redis_publish', channel: 'c', message: 'm' },
          { type: 'postgresql_update_combined', table: 't', key_field: 'k', key_value: 'v', waitForBranches: [], fields: { a: 'b' } },
        ],
        event,
      );
      assert.deepEqual(statuses(outcomes), ['redis_publish:failed', 'postgresql_update_combined:failed']);
      assert.match(outcomes[0]!.reason!, /no "redis" server/);
      assert.equal(own.stats().byType.redis_publish.failed, 1);
      assert.equal(own.stats().byType.postgresql_update_combined.failed, 1);
    } finally {
      await own.close();
    }
  });

  test('initial record only for multiClass nodes with every trigger class, configurable', async () => {
    const image = await fakeImage();
    assert.equal(await runner.initialRecord(makeEvent({ pipelineKey: 'main', image, node: carFrontalNode({ multiClass: false }) })), null);
    assert.equal(await runner.initialRecord(makeEvent({ pipelineKey: 'main', image, regions: { car: { bbox: [0, 0, 5, 5], confidence: 0.9 } } })), null);
    const own = createActionRunner({ logger, retry: { maxQueued: 10, baseDelayMs: 10, maxDelayMs: 100 }, defaults: { schema: RUN } });
    try {
      own.attach('custom', { postgresql: pgConfig, initialRecord: { table: 'trucks', triggerClasses: ['truck'] } });
      own.attach('off', { postgresql: pgConfig, initialRecord: { enabled: false } });
      const regions = { Truck: { bbox: [0, 0, 50, 50] as [number, number, number, number], confidence: 0.9 } };
      const event = makeEvent({ pipelineKey: 'custom', image, regions, request: { displayId: 'd-7', requestId: 'r-truck' } });
      const o = await own.initialRecord(event);
      assert.equal(o?.status, 'ok', o?.reason);
      assert.equal(o?.target, `${RUN}.trucks`);
      const rows = (await db.query(`SELECT display_id FROM "${RUN}".trucks WHERE session_id = $1`, [event.context.session_id])).rows;
      assert.deepEqual(rows, [{ display_id: 'd-7' }]);
      assert.equal(await own.initialRecord(makeEvent({ pipelineKey: 'off', image })), null);
    } finally {
      await own.close();
    }
  });

  test('credentials never reach reasons or logs', async () => {
    const secret = 'sup3r-s3cret-pw';
    const own = createActionRunner({ logger, retry: { maxQueued: 10, baseDelayMs: 10, maxDelayMs: 100 }, defaults: { schema: RUN, pgConnectTimeoutMs: 500, redisConnectTimeoutMs: 500, closeDrainMs: 50 } });
    try {
      // Nothing listens on port 1: connection refused.
      own.attach('dead', { redis: { host: '127.0.0.1', port: 1, password: secret }, postgresql: { ...pgConfig, port: 1, password: secret } });
      const event = makeEvent({ pipelineKey: 'dead', image: await fakeImage(), request: { sessionId: 's' } });
      const outcomes = [
        (await own.initialRecord(event))!,
        ...(await own.run(
          [
            { type: 'redis_save_image', key: 'k' },
            { type: 'redis_publish', channel: 'c', message: 'm' },
          ],
          event,
        )),
      ];
      assert.deepEqual(statuses(outcomes), ['initial_record:failed', 'redis_save_image:failed', 'redis_publish:failed']);
      assert.match(outcomes[0]!.reason!, /^queued for retry: /);
      assert.match(outcomes[2]!.reason!, /^queued for retry: /);
      for (const o of outcomes) assert.ok(!JSON.stringify(o).includes(secret));
    } finally {
      await own.close();
    }
    const logs = logLines.join('');
    assert.ok(logs.length > 0);
    assert.ok(!logs.includes(secret), 'password in logs');
  });
});
