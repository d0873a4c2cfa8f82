import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireService } from '@detector-worker/testkit/fixtures';
import { answers, parsePostgresUrl, parseRedisUrl, postgresForTests, redisForTests, startThrowawayPostgres, startThrowawayRedis } from '@detector-worker/testkit/servers';

test('URLs parse into connection configs', () => {
  assert.deepEqual(parseRedisUrl('redis://:s%40cret@10.0.0.5:6380/3'), { host: '10.0.0.5', port: 6380, db: 3, password: 's@cret' });
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { host: '127.0.0.1', port: 6379, db: 0 });
  assert.deepEqual(parsePostgresUrl('postgres://app:pw@db:5433/inference'), { host: 'db', port: 5433, database: 'inference', user: 'app', password: 'pw' });
  assert.throws(() => parseRedisUrl('http://x'), /redis:\/\//);
});

test('redisForTests and postgresForTests find a server that answers', async () => {
  const redis = await redisForTests();
  const pg = await postgresForTests();
  try {
    assert.ok(await answers(redis.config.host, redis.config.port, 'PING\r\n'));
    assert.ok(await answers(pg.config.host, pg.config.port));
    assert.match(redis.url, /^redis:\/\//);
    assert.match(pg.url, /^postgres(ql)?:\/\//);
  } finally {
    await redis.stop();
    await pg.stop();
  }
});

test('a throwaway redis-server pauses and resumes on the same port', async (t) => {
  let server;
  try {
    server = await startThrowawayRedis();
  } catch (err) {
    return requireService(t, 'redis-server', String(err));
  }
  try {
    const { host, port } = server.config;
    assert.ok(await answers(host, port, 'PING\r\n'));
    await server.pause();
    assert.equal(await answers(host, port, 'PING\r\n'), false);
    await server.resume();
    assert.ok(await answers(host, port, 'PING\r\n'));
  } finally {
    await server.stop();
  }
  assert.equal(await answers(server.config.host, server.config.port, 'PING\r\n'), false);
});

test('a throwaway postgres pauses and resumes on the same port', async (t) => {
  let server;
  try {
    server = await startThrowawayPostgres();
  } catch (err) {
    return requireService(t, 'PostgreSQL', String(err));
  }
  try {
    const { host, port } = server.config;
    assert.ok(await answers(host, port));
    await server.pause();
    assert.equal(await answers(host, port), false);
    await server.resume();
    assert.ok(await answers(host, port));
  } finally {
    await server.stop();
  }
});

test('requireService skips with the reason, or fails when REQUIRE_SERVICES=1', () => {
  const saved = process.env.REQUIRE_SERVICES;
  const skipped: Array<string | undefined> = [];
  const t = { skip: (m?: string) => void skipped.push(m) };
  try {
    delete process.env.REQUIRE_SERVICES;
    requireService(t, 'ffmpeg', 'not installed');
    assert.deepEqual(skipped, ['ffmpeg unavailable: not installed']);
    process.env.REQUIRE_SERVICES = '1';
    assert.throws(() => requireService(t, 'redis-server'), /redis-server unavailable; REQUIRE_SERVICES=1 makes this a failure/);
    assert.equal(skipped.length, 1);
  } finally {
    if (saved === undefined) delete process.env.REQUIRE_SERVICES;
    else process.env.REQUIRE_SERVICES = saved;
  }
});
