import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createLogger } from '@detector-worker/shared/logging';
import { SnapshotReader } from './snapshot-reader.js';

const quiet = createLogger('test', { level: 'silent' });
const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(500, 1), Buffer.from([0xff, 0xd9])]);

test('snapshots: a JPEG is a frame; too large, not a JPEG, an error status or silence take the camera offline', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/ok') return void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    if (req.url === '/html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
    if (req.url === '/big') return void res.writeHead(200).end(Buffer.concat([jpeg, Buffer.alloc(4096)]));
    if (req.url === '/chunked') {
      // No content-length: the limit is enforced while reading.
      res.writeHead(200);
      res.write(jpeg);
      res.write(Buffer.alloc(4096));
      return void res.end();
    }
    if (req.url === '/slow') return; // never answers
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const read = async (path: string) => {
    const reader = new SnapshotReader({ kind: 'snapshot', url: base + path, intervalMs: 100 }, { reconnectIntervalSec: 60, maxBackoffSec: 60, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 5, timeoutMs: 300, maxBytes: 2048 }, quiet, 10);
    const frames: Buffer[] = [];
    reader.on('frame', (f) => frames.push(f.jpeg));
    reader.start();
    for (let i = 0; i < 100 && frames.length < 3 && reader.stats.state !== 'waiting'; i++) await new Promise((r) => setTimeout(r, 20));
    const outcome = { frames: frames.length, online: reader.stats.online, error: reader.stats.lastError };
    await reader.stop();
    return outcome;
  };

  const ok = await read('/ok');
  assert.ok(ok.frames >= 3 && ok.online, 'identical snapshots of a still scene are not a stall');
  assert.match((await read('/big')).error ?? '', /over the 2048 byte limit/);
  assert.match((await read('/chunked')).error ?? '', /over the 2048 byte limit/);
  assert.match((await read('/html')).error ?? '', /not a JPEG/);
  assert.match((await read('/gone')).error ?? '', /HTTP 500/);
  const slow = await read('/slow');
  assert.equal(slow.online, false);
  assert.ok(slow.error, 'the timeout ends the request');
});
