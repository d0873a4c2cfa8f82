/** `npm run cms` against a running relay: it subscribes, prints state reports and detections, and sets a session. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { pino } from 'pino';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay } from '@detector-worker/relay/server';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { startStubInfer } from '@detector-worker/testkit/stub-infer';

test('the CMS simulator subscribes a snapshot camera with an archive and prints detections', async () => {
  const stub = await startStubInfer();
  const frame = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#123456' } }).jpeg().toBuffer();
  const camera = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(frame));
  await new Promise<void>((r) => camera.listen(0, '127.0.0.1', r));
  const relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: stub.url, heartbeatIntervalMs: 300 }, pino({ level: 'silent' }));
  const dir = await mkdtemp(join(tmpdir(), 'cms-sim-'));
  const archive = join(dir, 'any.mpta');
  await writeFile(archive, 'the stub infer never opens it');
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'tools/dist/cms-simulator.js'), '--camera', `http://127.0.0.1:${(camera.address() as { port: number }).port}/snap.jpg`, '--interval', '200', '--model', archive, '--session', '77', '--relay', `ws://127.0.0.1:${relay.port}/`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  try {
    for (let i = 0; i < 100 && !(/visit 1: a vehicle arrived @/.test(out) && /\| online/.test(out)); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /subscribing display-001;cam-001/);
    assert.match(out, /state: cpu .*\| online/);
    assert.match(out, /visit 1: a vehicle arrived @\d{4}-\d\d-\d\dT[^:]+:\d\d:\d\d\.\d{3}Z: \{"class":"car"/);
    assert.ok(stub.requests.some((r) => r.query.sessionId === '77'), 'the session reached infer');
    assert.equal(stub.requests[0]!.query.modelUrl, `file://${archive}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await relay.close();
    await stub.close();
    camera.close();
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(relay.registry.list().length, 0);
});
