import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import sharp from 'sharp';
import { createLogger } from '@detector-worker/shared/logging';
import { classifySnapshotError, readSnapshotBody, SnapshotFailure, SnapshotReader } from './snapshot-reader.js';

const quiet = createLogger('test', { level: 'silent' });
const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#345' } }).jpeg().toBuffer();

test('snapshots: a JPEG is a frame; too large, not a JPEG, an error status or silence take the camera offline', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/ok') return void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    if (req.url === '/html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
    if (req.url === '/big') {
      // Declared: refused from Content-Length before any body is read.
      const body = Buffer.concat([jpeg, Buffer.alloc(4096)]);
      return void res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    }
    if (req.url === '/chunked') {
      // No content-length: the limit is enforced while reading.
      res.writeHead(200);
      res.write(jpeg);
      res.write(Buffer.alloc(4096));
      return void res.end();
    }
    if (req.url === '/slow') return; // never answers
    if (req.url === '/torn') return void res.writeHead(200).end(jpeg.subarray(0, jpeg.length - 10));
    if (req.url === '/padded') return void res.writeHead(200).end(Buffer.concat([jpeg, Buffer.alloc(64)]));
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
    assert.ok(jpeg.length < 2048);
    const frames: Buffer[] = [];
    reader.on('frame', (f) => frames.push(f.jpeg));
    reader.start();
    for (let i = 0; i < 100 && frames.length < 3 && reader.state !== 'backoff'; i++) await new Promise((r) => setTimeout(r, 20));
    const outcome = { frames: frames.length, online: reader.stats.online, error: reader.stats.lastError, failures: { ...reader.stats.failures }, last: frames.at(-1) };
    await reader.stop();
    return outcome;
  };

  const ok = await read('/ok');
  assert.ok(ok.frames >= 3 && ok.online, 'identical snapshots of a still scene are not a stall');
  assert.deepEqual(ok.failures, {});
  const big = await read('/big');
  assert.match(big.error ?? '', /^snapshot of \d+ bytes is over the 2048 byte limit/);
  assert.deepEqual(big.failures, { too_large: 1 });
  assert.match((await read('/chunked')).error ?? '', /over the 2048 byte limit/);
  assert.deepEqual((await read('/html')).failures, { not_jpeg: 1 });
  assert.deepEqual((await read('/gone')).failures, { http_status: 1 });
  const torn = await read('/torn');
  assert.equal(torn.frames, 0);
  assert.match(torn.error ?? '', /not a complete JPEG/);
  assert.deepEqual(torn.failures, { invalid_jpeg: 1 });
  const padded = await read('/padded');
  assert.ok(padded.frames >= 1 && padded.last?.equals(jpeg), 'bytes after EOI are trimmed');
  const slow = await read('/slow');
  assert.equal(slow.online, false);
  assert.deepEqual(slow.failures, { timeout: 1 });
  assert.match(slow.error ?? '', /within 300 ms|timed out/);
});

test('snapshot bodies: refused at the first bytes unless JPEG, capped while read', async () => {
  async function* chunks(...parts: Buffer[]) {
    yield* parts;
  }
  let pulled = 0;
  async function* endless() {
    for (;;) {
      pulled++;
      yield Buffer.from('xxxxxxxxxxxxxxxx');
    }
  }
  await assert.rejects(readSnapshotBody(endless(), 1 << 20), (e: SnapshotFailure) => e.kind === 'not_jpeg');
  assert.equal(pulled, 1, 'one chunk was enough to refuse it');
  await assert.rejects(readSnapshotBody(chunks(Buffer.from([0xff]), Buffer.from([0x00, 1, 2])), 100), (e: SnapshotFailure) => e.kind === 'not_jpeg');
  assert.deepEqual(await readSnapshotBody(chunks(Buffer.from([0xff]), Buffer.from([0xd8, 1])), 100), Buffer.from([0xff, 0xd8, 1]));
  await assert.rejects(readSnapshotBody(chunks(Buffer.from([0xff, 0xd8]), Buffer.alloc(200)), 100), (e: SnapshotFailure) => e.kind === 'too_large');
  await assert.rejects(readSnapshotBody(chunks(), 100), (e: SnapshotFailure) => e.kind === 'not_jpeg');
});

test('network errors are classified', () => {
  assert.equal(classifySnapshotError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).kind, 'connect');
  assert.equal(classifySnapshotError(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' })).kind, 'timeout');
  assert.equal(classifySnapshotError(new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })], 'all failed')).kind, 'connect');
  assert.equal(classifySnapshotError(new Error('weird')).kind, 'error');
  assert.equal(classifySnapshotError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })).kind, 'error', 'connected, then dropped: no port knocking');
});
