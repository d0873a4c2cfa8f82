import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRelayConfig } from './config.js';

test('config: original config.json keys and env, env wins, bad values name the variable', async () => {
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const file = join(mkdtempSync(join(tmpdir(), 'relay-config-')), 'config.json');
  writeFileSync(file, JSON.stringify({ poll_interval_ms: 100, max_streams: 5, target_fps: 2, reconnect_interval_sec: 5, max_retries: -1 }));
  const c = loadRelayConfig({ RELAY_CONFIG: file, MAX_STREAMS: '9' });
  assert.equal(c.maxStreams, 9);
  assert.equal(c.targetFps, 2);
  assert.equal(c.maxRetries, -1);
  assert.equal(c.port, 8000);
  assert.throws(() => loadRelayConfig({ RELAY_PORT: 'eighty' }), /RELAY_PORT/);
  assert.throws(() => loadRelayConfig({ INFER_URL: 'ftp://x' }), /INFER_URL/);
  assert.throws(() => loadRelayConfig({ RELAY_CONFIG: '/nonexistent/config.json' }), /RELAY_CONFIG/);
  writeFileSync(file, JSON.stringify({ max_streams: 'many', target_fps: 2 }));
  assert.throws(() => loadRelayConfig({ RELAY_CONFIG: file }), /max_streams in RELAY_CONFIG=.*"many" is invalid/);
  assert.equal(loadRelayConfig({ RELAY_CONFIG: file, MAX_STREAMS: '3' }).maxStreams, 3, 'the environment overrides a bad file value');
  assert.throws(() => loadRelayConfig({ RELAY_CONFIG: file, MAX_STREAMS: 'x' }), /MAX_STREAMS="x" is invalid/);
});
