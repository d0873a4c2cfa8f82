import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@detector-worker/shared/logging';
import { InferEndpoints, expands, withAddress } from './infer-endpoints.js';

const quiet = createLogger('test', { level: 'silent' });

test('a headless Service name expands to one endpoint per address, refreshed; lookups that fail keep the last', async () => {
  let answer: string[] | Error = ['10.0.0.2', '10.0.0.1'];
  const endpoints = new InferEndpoints(['http://infer-headless:8080', 'http://127.0.0.1:9000/'], {
    refreshMs: 60_000,
    logger: quiet,
    resolve: async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  assert.deepEqual(endpoints.current(), ['http://infer-headless:8080', 'http://127.0.0.1:9000']);
  await endpoints.refresh();
  assert.deepEqual(endpoints.current(), ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://127.0.0.1:9000']);
  answer = ['10.0.0.3', 'fd00::7'];
  await endpoints.refresh();
  assert.deepEqual(endpoints.current(), ['http://10.0.0.3:8080', 'http://127.0.0.1:9000', 'http://[fd00::7]:8080']);
  answer = new Error('SERVFAIL');
  await endpoints.refresh();
  assert.deepEqual(endpoints.current(), ['http://10.0.0.3:8080', 'http://127.0.0.1:9000', 'http://[fd00::7]:8080']);
  endpoints.stop();
});

test('https names, IPs and localhost are used as given', () => {
  assert.equal(expands(new URL('https://infer.example:443')), false);
  assert.equal(expands(new URL('http://127.0.0.1:8080')), false);
  assert.equal(expands(new URL('http://[::1]:8080')), false);
  assert.equal(expands(new URL('http://localhost:8080')), false);
  assert.equal(expands(new URL('http://infer:8080')), true);
  assert.equal(withAddress(new URL('http://infer:8080/'), '10.1.2.3'), 'http://10.1.2.3:8080');
});
