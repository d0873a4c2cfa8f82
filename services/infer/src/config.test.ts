import assert from 'node:assert/strict';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CodedError } from '@detector-worker/shared/errors';
import { loadInferConfig } from './config.js';

const MB = 1024 * 1024;

function configError(env: Record<string, string>): CodedError {
  try {
    loadInferConfig(env);
  } catch (err) {
    assert.ok(err instanceof CodedError, String(err));
    assert.equal(err.code, 'CONFIG_INVALID');
    return err;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
}

test('defaults: the documented values, the machine-dependent ones computed', () => {
  const c = loadInferConfig({});
  assert.deepEqual(c, {
    host: '0.0.0.0',
    port: 8080,
    cacheDir: join(tmpdir(), 'detector-worker-models'),
    workers: availableParallelism(),
    intraOpThreads: 1,
    allowFileUrls: true,
    modelUrlAllow: [],
    maxModels: 8,
    maxModelBytes: 0,
    downloadMaxBytes: 512 * MB,
    downloadConnectTimeoutMs: 10_000,
    downloadBodyTimeoutMs: 30_000,
    downloadTimeoutMs: 300_000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    archiveMaxEntries: 256,
    archiveMaxBytes: 1024 * MB,
    maxBodyBytes: 20 * MB,
    maxImagePixels: 50_000_000,
    maxQueue: 64,
    failedRetryMs: 5_000,
    token: undefined,
    shutdownTimeoutMs: 20_000,
    actionRetryMaxQueued: 1000,
    actionRetryBaseMs: 500,
    actionRetryMaxMs: 30_000,
  });
});

test('set values are read, units converted, lists split and empty values mean the default', () => {
  const c = loadInferConfig({
    INFER_HOST: '127.0.0.1',
    INFER_PORT: '9000',
    MODEL_CACHE_DIR: '/var/cache/models',
    INFER_WORKERS: '3',
    ALLOW_FILE_MODEL_URLS: 'off',
    MODEL_URL_ALLOW: ' models.example.com, ,*.cdn.example:8443 ',
    MAX_MODEL_MEMORY_MB: '100',
    MODEL_MAX_MB: '2',
    ARCHIVE_MAX_MB: '3',
    INFER_TOKEN: 'secret',
    INFER_HEADERS_TIMEOUT_MS: '500',
    INFER_REQUEST_TIMEOUT_MS: '500',
    MAX_MODELS: '',
    INFER_TOKEN_UNUSED: 'x',
  });
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 9000);
  assert.equal(c.cacheDir, '/var/cache/models');
  assert.equal(c.workers, 3);
  assert.equal(c.allowFileUrls, false);
  assert.deepEqual(c.modelUrlAllow, ['models.example.com', '*.cdn.example:8443']);
  assert.equal(c.maxModelBytes, 100 * MB);
  assert.equal(c.downloadMaxBytes, 2 * MB);
  assert.equal(c.archiveMaxBytes, 3 * MB);
  assert.equal(c.token, 'secret');
  assert.equal(c.headersTimeoutMs, 500);
  assert.equal(c.maxModels, 8);
  assert.equal(loadInferConfig({ INFER_TOKEN: '' }).token, undefined);
});

test('booleans accept 1/0, true/false, yes/no, on/off in any case', () => {
  for (const yes of ['1', 'true', 'TRUE', 'yes', 'On', ' on ']) assert.equal(loadInferConfig({ ALLOW_FILE_MODEL_URLS: yes }).allowFileUrls, true, yes);
  for (const no of ['0', 'false', 'False', 'no', 'OFF']) assert.equal(loadInferConfig({ ALLOW_FILE_MODEL_URLS: no }).allowFileUrls, false, no);
  assert.match(configError({ ALLOW_FILE_MODEL_URLS: 'maybe' }).message, /^ALLOW_FILE_MODEL_URLS="maybe" is invalid: expected true\/false/);
});

test('invalid numbers stop the start with CONFIG_INVALID naming the variable and its value', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ INFER_PORT: 'eighty' }, /^INFER_PORT="eighty" is invalid: expected an integer/],
    [{ INFER_PORT: '70000' }, /^INFER_PORT="70000" is invalid: expected an integer between 0 and 65535/],
    [{ INFER_WORKERS: '0' }, /^INFER_WORKERS="0" is invalid: expected an integer between 1 and 64/],
    [{ INFER_WORKERS: '1.5' }, /^INFER_WORKERS="1.5" is invalid: expected an integer/],
    [{ MAX_MODELS: '-1' }, /^MAX_MODELS="-1" is invalid: expected an integer/],
    [{ MAX_IMAGE_BYTES: '100' }, /^MAX_IMAGE_BYTES="100" is invalid: expected an integer/],
    [{ MODEL_MAX_MB: '0x10' }, /^MODEL_MAX_MB="0x10" is invalid: expected an integer/],
    [{ MODEL_MAX_MB: '1e3' }, /^MODEL_MAX_MB="1e3" is invalid: expected an integer/],
  ];
  for (const [env, message] of cases) {
    const err = configError(env);
    assert.match(err.message, message);
    assert.equal(err.details?.variable, Object.keys(env)[0]);
    assert.equal(err.statusCode, 500);
  }
});

test('the headers timeout must not exceed the request timeout', () => {
  const err = configError({ INFER_HEADERS_TIMEOUT_MS: '70000' });
  assert.match(err.message, /INFER_HEADERS_TIMEOUT_MS \(70000\) must not exceed INFER_REQUEST_TIMEOUT_MS \(60000\)/);
  assert.equal(err.details?.variable, 'INFER_HEADERS_TIMEOUT_MS');
});
