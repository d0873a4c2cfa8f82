import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@detector-worker/shared/logging';
import { backoffDelayMs as backoffDelay } from '@detector-worker/shared/backoff';
import { RetryQueue, type RetryJob } from './retry-queue.js';

const logger = createLogger('test', { level: 'silent' });

function setup(maxQueued = 3) {
  let serverUp = false;
  const applied: string[] = [];
  const dropped: Array<[string, string]> = [];
  const queue = new RetryQueue({
    label: 'fake',
    logger,
    maxQueued,
    baseDelayMs: 1,
    maxDelayMs: 4,
    retryable: (err) => !(err instanceof Error && err.message.startsWith('permanent')),
    describe: (err) => (err instanceof Error ? err.message : String(err)),
    onApplied: (job) => applied.push(job.target),
    onDropped: (job, reason) => dropped.push([job.target, reason]),
  });
  const job = (target: string, permanent = false): RetryJob => ({
    type: 'redis_publish',
    node: 'n',
    target,
    run: async () => {
      if (permanent) throw new Error('permanent: bad statement');
      if (!serverUp) throw new Error('ECONNREFUSED');
    },
  });
  return { queue, job, applied, dropped, up: () => (serverUp = true) };
}

test('backoff doubles from base up to the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((f) => backoffDelay(f, 100, 1000)), [0, 100, 200, 400, 800, 1000]);
});

test('writes wait while the server is down and are applied in order when it returns', async () => {
  const s = setup();
  assert.ok(s.queue.push(s.job('a')));
  assert.ok(s.queue.push(s.job('b')));
  assert.ok(s.queue.push(s.job('c')));
  assert.equal(s.queue.push(s.job('d')), false, 'a full queue refuses');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(s.applied, []);
  assert.equal(s.queue.size, 3);
  s.up();
  assert.ok(await s.queue.whenIdle(5000));
  assert.deepEqual(s.applied, ['a', 'b', 'c']);
});

test('a write that can never succeed is dropped and the rest go on', async () => {
  const s = setup();
  s.up();
  s.queue.push(s.job('a'));
  s.queue.push(s.job('bad', true));
  s.queue.push(s.job('c'));
  assert.ok(await s.queue.whenIdle(5000));
  assert.deepEqual(s.applied, ['a', 'c']);
  assert.deepEqual(s.dropped, [['bad', 'permanent: bad statement']]);
});

test('close reports every waiting write as dropped', async () => {
  const s = setup();
  s.queue.push(s.job('a'));
  s.queue.push(s.job('b'));
  assert.equal(s.queue.close(), 2);
  assert.deepEqual(s.dropped.map(([t]) => t), ['a', 'b']);
  assert.equal(s.queue.push(s.job('c')), false);
});
