import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CodedError } from '@detector-worker/shared/errors';
import { loadRelayConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function configError(env: Record<string, string>): CodedError {
  try {
    loadRelayConfig(env);
  } catch (err) {
    assert.ok(err instanceof CodedError && err.code === 'CONFIG_INVALID', String(err));
    return err;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
}

test('defaults: the documented values', () => {
  assert.deepEqual(loadRelayConfig({}), {
    host: '0.0.0.0',
    port: 8000,
    inferUrl: 'http://127.0.0.1:8080',
    inferDnsRefreshMs: 10_000,
    idleDetectIntervalMs: 3000,
    idleSlowCamera: true,
    inferToken: undefined,
    relayToken: undefined,
    heartbeatIntervalMs: 2000,
    reconnectGraceMs: 60_000,
    pollIntervalMs: 100,
    maxStreams: 20,
    targetFps: 2,
    reconnectIntervalSec: 5,
    maxRetries: -1,
    maxBackoffSec: 60,
    watchdogMs: 15_000,
    identicalFrameLimit: 50,
    keyframeOnlyFps: 0.5,
    snapshotTimeoutMs: 5000,
    snapshotMaxBytes: 16 * 1024 * 1024,
    inferTimeoutMs: 60_000,
    jpegQuality: 85,
    detectFrames: 'raw',
    framePreviewWidth: 320,
    ffmpegPath: 'ffmpeg',
    shutdownTimeoutMs: 10_000,
  });
});

test('environment values, file keys under them, empty values meaning the default', () => {
  const path = file('ok.json', { poll_interval_ms: 50, max_streams: 4, target_fps: 0.5, reconnect_interval_sec: 1.5, max_retries: 3, other: 'ignored' });
  const c = loadRelayConfig({ RELAY_CONFIG: path, MAX_RETRIES: '7', INFER_URL: 'https://infer.internal:9443', RELAY_TOKEN: 't', TARGET_FPS: '', RELAY_JPEG_QUALITY: '' });
  assert.deepEqual(
    [c.pollIntervalMs, c.maxStreams, c.targetFps, c.reconnectIntervalSec, c.maxRetries, c.inferUrl, c.relayToken, c.jpegQuality],
    [50, 4, 2, 1.5, 7, 'https://infer.internal:9443', 't', 85],
  );
});

test('bad values name the variable, or the file key when the value came from the file', () => {
  assert.match(configError({ RELAY_PORT: 'eighty' }).message, /^RELAY_PORT="eighty" is invalid: expected an integer/);
  assert.match(configError({ TARGET_FPS: '61' }).message, /^TARGET_FPS="61" is invalid: expected a number/);
  assert.match(configError({ MAX_RETRIES: '-2' }).message, /^MAX_RETRIES="-2" is invalid/);
  assert.match(configError({ DETECT_FRAMES: 'png' }).message, /^DETECT_FRAMES="png" is invalid: expected one of raw, jpeg/);
  assert.equal(loadRelayConfig({ DETECT_FRAMES: 'jpeg' }).detectFrames, 'jpeg');
  assert.match(configError({ INFER_URL: 'ftp://x' }).message, /^INFER_URL="ftp:\/\/x" is invalid: expected one or more http\(s\) URLs, comma-separated/);
  assert.match(configError({ INFER_URL: 'http://a:8080,nope' }).message, /^INFER_URL=/);
  assert.equal(loadRelayConfig({ INFER_URL: 'http://infer-a:8080, http://infer-b:8080' }).inferUrl, 'http://infer-a:8080, http://infer-b:8080');
  const fromFile = configError({ RELAY_CONFIG: file('bad.json', { target_fps: 'fast' }) });
  assert.match(fromFile.message, /^target_fps in RELAY_CONFIG=.*bad\.json: "fast" is invalid: expected a number/);
  assert.deepEqual(fromFile.details, { variable: 'RELAY_CONFIG', key: 'target_fps' });
  assert.equal(configError({ RELAY_CONFIG: file('list.json', '[1,') }).details?.variable, 'RELAY_CONFIG');
  assert.match(configError({ RELAY_CONFIG: file('null.json', 'null') }).message, /must hold a JSON object/);
});
