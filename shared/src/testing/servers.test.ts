import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answers, parsePostgresUrl, parseRedisUrl, postgresForTests, redisForTests, startThrowawayPostgres, startThrowawayRedis } from './servers.js';

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
    return t.skip(String(err));
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
    return t.skip(String(err));
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
