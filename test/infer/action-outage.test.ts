/**
 * No lost writes: private redis-server and PostgreSQL instances go down while events keep
 * coming; the writes wait in the retry queues, overflow is counted, and everything queued
 * is applied, in order, once the servers are back on the same ports. The machine's shared
 * servers are never touched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createLogger } from '@detector-worker/shared/logging';
import type { PipelineNode } from '@detector-worker/shared/pipeline/schema';
import { requireService } from '@detector-worker/testkit/fixtures';
import { startThrowawayPostgres, startThrowawayRedis, type PostgresServerConfig, type RedisServerConfig, type ThrowawayServer } from '@detector-worker/testkit/servers';
import type { ActionEvent, ActionOutcome } from '@detector-worker/infer/pipeline/types';
import { createActionRunner, type StatefulActionRunner } from '@detector-worker/infer/actions/runner';
import { carFrontalNode, fakeImage, makeEvent } from '@detector-worker/testkit/action-events';

const logger = createLogger('outage-test', { level: 'silent' });
let redisServer: ThrowawayServer<RedisServerConfig> | undefined;
let pgServer: ThrowawayServer<PostgresServerConfig> | undefined;
let runner: StatefulActionRunner | undefined;
let skipReason: string | undefined;

before(async () => {
  try {
    [redisServer, pgServer] = await Promise.all([startThrowawayRedis(), startThrowawayPostgres()]);
  } catch (err) {
    skipReason = `throwaway servers unavailable: ${String(err)}`;
  }
});

after(async () => {
  await runner?.close();
  await redisServer?.stop();
  await pgServer?.stop();
});

const node: PipelineNode = carFrontalNode({
  actions: [
    { type: 'redis_save_image', region: 'Frontal', key: 'img:{session_id}', expire_seconds: 60 },
    { type: 'redis_publish', channel: 'car_detections', message: '{"session_id":"{session_id}"}' },
  ],
  parallelActions: [
    {
      type: 'postgresql_update_combined',
      table: 'car_frontal_info',
      key_field: 'session_id',
      key_value: '{session_id}',
      waitForBranches: ['car_brand_cls_v1'],
      fields: { car_brand: '{car_brand_cls_v1.brand}' },
    },
  ],
});

async function carEvent(requestId: string, brand: string): Promise<{ event: ActionEvent; outcomes: ActionOutcome[] }> {
  const event = makeEvent({ pipelineKey: 'p', node, image: await fakeImage(), request: { subscriptionIdentifier: `display-${requestId};cam`, requestId } });
  const outcomes: ActionOutcome[] = [];
  const initial = await runner!.initialRecord(event);
  if (initial) outcomes.push(initial);
  outcomes.push(...(await runner!.run(node.actions!, event)));
  event.branchResults = { car_brand_cls_v1: { class: brand, confidence: 0.9, id: null, brand } };
  outcomes.push(...(await runner!.run(node.parallelActions!, event)));
  return { event, outcomes };
}

const brief = (outcomes: ActionOutcome[]) => outcomes.map((o) => `${o.type}:${o.status}${o.reason?.startsWith('queued for retry') ? ':queued' : o.reason?.startsWith('dropped') ? ':dropped' : ''}`);

test('servers go down and come back: queued writes are applied, overflow counted', async (t) => {
  if (skipReason || !redisServer || !pgServer) return requireService(t, 'redis-server and PostgreSQL', skipReason);
  const r = redisServer.config;
  const p = pgServer.config;
  runner = createActionRunner({
    logger,
    retry: { maxQueued: 4, baseDelayMs: 20, maxDelayMs: 200 },
    defaults: { pgConnectTimeoutMs: 1000, redisConnectTimeoutMs: 1000, redisCommandTimeoutMs: 1000 },
  });
  runner.attach('p', { redis: { host: r.host, port: r.port }, postgresql: { host: p.host, port: p.port, database: p.database, username: p.user, password: '' } });

  const a = await carEvent('A', 'Toyota');
  assert.deepEqual(brief(a.outcomes), ['initial_record:ok', 'redis_save_image:ok', 'redis_publish:ok', 'postgresql_update_combined:ok']);

  await Promise.all([redisServer.pause(), pgServer.pause()]);

  const b = await carEvent('B', 'Honda');
  const c = await carEvent('C', 'Mazda');
  const queuedEvent = ['initial_record:failed:queued', 'redis_save_image:failed', 'redis_publish:failed:queued', 'postgresql_update_combined:failed:queued'];
  assert.deepEqual(brief(b.outcomes), queuedEvent);
  assert.deepEqual(brief(c.outcomes), queuedEvent);
  // The PostgreSQL queue (4) is full now: D's initial record does not fit and its session
  // is never announced, so its update has no key.
  const d = await carEvent('D', 'Kia');
  assert.deepEqual(brief(d.outcomes), ['initial_record:failed:dropped', 'redis_save_image:failed', 'redis_publish:failed:queued', 'postgresql_update_combined:skipped']);

  let stats = runner.stats();
  assert.equal(stats.pending, 7);
  assert.deepEqual(stats.byType.initial_record, { ok: 1, skipped: 0, failed: 3, queued: 2, retried: 0, dropped: 1 });
  assert.deepEqual(stats.byType.redis_publish, { ok: 1, skipped: 0, failed: 3, queued: 3, retried: 0, dropped: 0 });
  assert.deepEqual(stats.byType.redis_save_image, { ok: 1, skipped: 0, failed: 3, queued: 0, retried: 0, dropped: 3 });
  assert.deepEqual(stats.byType.postgresql_update_combined, { ok: 1, skipped: 1, failed: 2, queued: 2, retried: 0, dropped: 0 });

  // The pipeline is unloaded meanwhile: its servers stay open until the backlog is applied.
  await runner.detach('p');
  assert.deepEqual(runner.stats().connections, { redis: 1, postgresql: 1 });

  await Promise.all([redisServer.resume(), pgServer.resume()]);
  for (let i = 0; i < 300 && (runner.stats().pending > 0 || runner.stats().connections.redis + runner.stats().connections.postgresql > 0); i++) await new Promise((res) => setTimeout(res, 50));
  stats = runner.stats();
  assert.equal(stats.pending, 0, 'every queued write applied');
  assert.deepEqual(stats.connections, { redis: 0, postgresql: 0 }, 'closed once drained');
  assert.equal(stats.byType.initial_record.retried, 2);
  assert.equal(stats.byType.postgresql_update_combined.retried, 2);
  assert.equal(stats.byType.redis_publish.retried, 3);

  // Rows: A from before, B and C from the queue, initial record first (display id set).
  const db = new pg.Pool({ host: p.host, port: p.port, database: p.database, user: p.user, max: 1 });
  try {
    const rows = (await db.query('SELECT display_id, car_brand FROM gas_station_1.car_frontal_info ORDER BY display_id')).rows;
    assert.deepEqual(rows, [
      { display_id: 'display-A', car_brand: 'Toyota' },
      { display_id: 'display-B', car_brand: 'Honda' },
      { display_id: 'display-C', car_brand: 'Mazda' },
    ]);
  } finally {
    await db.end();
  }
  // The restarted redis-server is a fresh process: its PUBLISH count is exactly the queued ones.
  const check = new Redis({ host: r.host, port: r.port });
  try {
    const info = await check.info('commandstats');
    assert.match(info, /cmdstat_publish:calls=3,/);
  } finally {
    check.disconnect();
  }

  // And it keeps working normally afterwards.
  runner.attach('p', { redis: { host: r.host, port: r.port }, postgresql: { host: p.host, port: p.port, database: p.database, username: p.user, password: '' } });
  const e = await carEvent('E', 'Ford');
  assert.deepEqual(brief(e.outcomes), ['initial_record:ok', 'redis_save_image:ok', 'redis_publish:ok', 'postgresql_update_combined:ok']);
});
