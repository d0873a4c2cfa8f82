/**
 * Hostile infer clients against the real infer process: slowloris headers and bodies are cut
 * off by the configured timeouts, refusals (429, 413, 401) come before the body is read, every
 * framework error arrives as one of our codes, and the admission count never leaks. Raw RGB
 * bodies with a missing, malformed or huge size, or the wrong length, get their own codes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { buildConstantOutputModel } from '@detector-worker/testkit/onnx-builder';
import { buildMpta } from '@detector-worker/testkit/mpta';
import { connectionClose, delayed, parseRawAnswer, rawClient, startFileServer, startRawServer, type LoopbackServer, type RawClient } from './support/hostile-http.js';
import { startInferProcess, type InferProcess } from './support/infer-process.js';

const TOKEN = 's3cret-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 3000;
/** workers (1) + INFER_MAX_QUEUE (2). */
const ADMISSION_LIMIT = 3;

let work: string;
let jpeg: Buffer;
let models: LoopbackServer;
let slowModels: LoopbackServer;
let infer: InferProcess;
const opened: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await rawClient(infer.port);
  opened.push(c);
  return c;
}

function head(path: string, headers: Record<string, string | number>, method = 'POST'): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

async function inferJpeg(body: Buffer = jpeg, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  const r = await request(`${infer.url}/v1/models/m/infer`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg', ...AUTH, ...headers }, headersTimeout: 20_000, bodyTimeout: 20_000 });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body: text ? JSON.parse(text) : undefined };
}

async function inFlight(): Promise<number> {
  const text = await (await request(`${infer.url}/metrics`)).body.text();
  return Number(/^infer_requests_in_flight (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what} not within ${ms} ms`);
}

async function dribble(c: RawClient, text: string, everyMs: number, stop: () => boolean): Promise<void> {
  for (const ch of text) {
    if (stop() || c.socket.destroyed) return;
    await c.write(ch);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A baseline JPEG whose frame header claims another size (nothing else changes). */
function withClaimedSize(image: Buffer, width: number, height: number): Buffer {
  const copy = Buffer.from(image);
  for (let i = 2; i < copy.length - 9; ) {
    if (copy[i] !== 0xff) break;
    const marker = copy[i + 1]!;
    const length = copy.readUInt16BE(i + 2);
    if (marker === 0xc0 || marker === 0xc2) {
      copy.writeUInt16BE(height, i + 5);
      copy.writeUInt16BE(width, i + 7);
      return copy;
    }
    i += 2 + length;
  }
  throw new Error('no SOF marker found');
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hostile-clients-'));
  const n = 2;
  const values = new Float32Array(6 * n);
  values.set([16, 16, 8, 8, 0.9], 0);
  const model = buildConstantOutputModel({ inputDims: [1, 3, 64, 64], outputDims: [1, 6, n], values, metadata: { task: 'detect', names: "{0: 'thing', 1: 'other'}" } });
  const archive = await buildMpta({ pipeline: { pipeline: { modelId: 'fake', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(model) } });
  jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  models = await startFileServer({ '/m.mpta': archive });
  // Answers later than the request timeout: a request waiting on this load must not be cut off.
  slowModels = await startRawServer({ '/slow.mpta': delayed(REQUEST_TIMEOUT_MS + 1000, connectionClose(archive)) });
  infer = await startInferProcess({
    MODEL_CACHE_DIR: join(work, 'cache'),
    INFER_TOKEN: TOKEN,
    MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
    INFER_MAX_QUEUE: String(ADMISSION_LIMIT - 1),
    INFER_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    INFER_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  });
  const put = await request(`${infer.url}/v1/models/m`, { method: 'PUT', body: JSON.stringify({ modelUrl: `${models.base}/m.mpta` }), headers: { 'content-type': 'application/json', ...AUTH } });
  assert.equal(put.statusCode, 200, await put.body.text());
  await put.body.dump();
});

after(async () => {
  for (const c of opened) c.destroy();
  await infer?.stop();
  await Promise.all([models?.close(), slowModels?.close()]);
  await rm(work, { recursive: true, force: true });
});

describe('slow clients', () => {
  test('slowloris: dribbled headers get 408 REQUEST_TIMEOUT and are disconnected within the headers timeout; others are served meanwhile', async (t) => {
    const t0 = Date.now();
    const lorises = await Promise.all(Array.from({ length: 10 }, () => client()));
    let done = false;
    const dribbling = lorises.map((c) => dribble(c, `POST /v1/models/m/infer HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(200)}`, 50, () => done));
    const served = await inferJpeg();
    assert.equal(served.status, 200, JSON.stringify(served.body));
    const answers = await Promise.all(lorises.map((c) => c.closed(HEADERS_TIMEOUT_MS + 4000)));
    done = true;
    await Promise.all(dribbling);
    const ms = Date.now() - t0;
    for (const raw of answers) {
      const a = parseRawAnswer(raw);
      assert.equal(a.status, 408, raw);
      assert.equal((a.body as { code: string }).code, 'REQUEST_TIMEOUT');
    }
    t.diagnostic(`10 slowloris connections: 408 REQUEST_TIMEOUT and closed after ${ms} ms (INFER_HEADERS_TIMEOUT_MS=${HEADERS_TIMEOUT_MS})`);
    assert.ok(infer.alive());
  });

  test('a body dribbled past INFER_REQUEST_TIMEOUT_MS gets 408 and its admission is released', async (t) => {
    const t0 = Date.now();
    const c = await client();
    await c.write(head('/v1/models/m/infer', { 'content-type': 'image/jpeg', 'content-length': jpeg.length, ...AUTH }));
    let done = false;
    const dribbling = dribble(c, jpeg.toString('latin1'), 100, () => done);
    const raw = await c.closed(REQUEST_TIMEOUT_MS + 4000);
    done = true;
    await dribbling;
    const a = parseRawAnswer(raw);
    assert.equal(a.status, 408, raw);
    assert.equal((a.body as { code: string }).code, 'REQUEST_TIMEOUT');
    t.diagnostic(`dribbled body: 408 REQUEST_TIMEOUT after ${Date.now() - t0} ms (INFER_REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS})`);
    await eventually(async () => (await inFlight()) === 0, 2000, 'in-flight back to 0');
  });

  test('the request timeout bounds receiving only: an answer that waits on a slow model load still arrives', async (t) => {
    const t0 = Date.now();
    const r = await inferJpeg(jpeg, { 'x-model-url': `${slowModels.base}/slow.mpta` });
    const ms = Date.now() - t0;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(ms > REQUEST_TIMEOUT_MS, `took ${ms} ms`);
    t.diagnostic(`answered 200 after ${ms} ms, past INFER_REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS}`);
  });
});

describe('admission before the body', () => {
  test('a refused request gets 429 OVERLOADED with Retry-After while most of its body is unsent, and slots come back', async (t) => {
    // Fill every slot with uploads that never finish.
    const holders = await Promise.all(Array.from({ length: ADMISSION_LIMIT }, () => client()));
    for (const h of holders) {
      await h.write(head('/v1/models/m/infer', { 'content-type': 'image/jpeg', 'content-length': MAX_IMAGE_BYTES, ...AUTH }));
      await h.write(Buffer.alloc(1024));
    }
    await eventually(async () => (await inFlight()) === ADMISSION_LIMIT, 2000, 'slots taken');
    const t0 = Date.now();
    const refused = await client();
    await refused.write(head('/v1/models/m/infer', { 'content-type': 'image/jpeg', 'content-length': MAX_IMAGE_BYTES, ...AUTH }));
    await refused.write(Buffer.alloc(16 * 1024));
    const raw = await refused.waitFor('}', 2000);
    const a = parseRawAnswer(raw);
    assert.equal(a.status, 429, raw);
    assert.equal((a.body as { code: string }).code, 'OVERLOADED');
    assert.equal(a.headers['retry-after'], '1');
    assert.equal(a.headers.connection, 'close');
    assert.ok(refused.sent() < 20 * 1024, `only ${refused.sent()} of ${MAX_IMAGE_BYTES} body bytes were sent`);
    await refused.closed(2000);
    t.diagnostic(`429 OVERLOADED after ${Date.now() - t0} ms with ${refused.sent()} bytes sent of a ${MAX_IMAGE_BYTES}-byte body; connection closed`);
    for (const h of holders) h.destroy();
    await eventually(async () => (await inFlight()) === 0, 2000, 'in-flight back to 0 after the uploads were abandoned');
    assert.equal((await inferJpeg()).status, 200);
  });

  test('20 concurrent bodies at MAX_IMAGE_BYTES: each served or refused with 429, and the count returns to 0', async (t) => {
    const atLimit = Buffer.concat([jpeg, Buffer.alloc(MAX_IMAGE_BYTES - jpeg.length)]);
    const t0 = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        inferJpeg(atLimit).then(
          (r) => String(r.status),
          // A refused upload may see its connection closed before it reads the 429.
          (err: { code?: string }) => `socket:${err.code ?? 'error'}`,
        ),
      ),
    );
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
    t.diagnostic(`20 x ${MAX_IMAGE_BYTES} bytes in ${Date.now() - t0} ms: ${JSON.stringify(counts)}`);
    assert.ok((counts['200'] ?? 0) >= 1, JSON.stringify(counts));
    for (const o of Object.keys(counts)) assert.ok(o === '200' || o === '429' || o.startsWith('socket:'), `unexpected outcome ${o}`);
    await eventually(async () => (await inFlight()) === 0, 2000, 'in-flight back to 0');
    assert.equal((await inferJpeg()).status, 200, 'admits again after the burst');
  });
});

describe('oversized and malformed requests', () => {
  test('a declared Content-Length over MAX_IMAGE_BYTES: 413 BODY_TOO_LARGE before any body byte', async (t) => {
    const t0 = Date.now();
    const c = await client();
    await c.write(head('/v1/models/m/infer', { 'content-type': 'image/jpeg', 'content-length': MAX_IMAGE_BYTES + 1, ...AUTH }));
    const a = parseRawAnswer(await c.waitFor('}', 2000));
    assert.equal(a.status, 413);
    assert.equal((a.body as { code: string }).code, 'BODY_TOO_LARGE');
    await c.closed(2000);
    t.diagnostic(`declared oversize: 413 BODY_TOO_LARGE in ${Date.now() - t0} ms, no body sent`);
  });

  test('a chunked body without length: 413 BODY_TOO_LARGE once it passes the limit', async (t) => {
    const t0 = Date.now();
    const c = await client();
    await c.write(head('/v1/models/m/infer', { 'content-type': 'image/jpeg', 'transfer-encoding': 'chunked', ...AUTH }));
    const chunk = Buffer.alloc(64 * 1024, 1);
    while (!c.received().includes('}') && !c.socket.destroyed && c.sent() < 4 * MAX_IMAGE_BYTES) {
      await c.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
      // Paced, so that what the kernel buffers does not hide when the server stopped reading.
      await new Promise((r) => setTimeout(r, 5));
    }
    const a = parseRawAnswer(await c.waitFor('}', 2000));
    assert.equal(a.status, 413, c.received());
    assert.equal((a.body as { code: string }).code, 'BODY_TOO_LARGE');
    assert.ok(c.sent() < MAX_IMAGE_BYTES + 1024 * 1024, `sent ${c.sent()} bytes`);
    t.diagnostic(`chunked oversize: 413 BODY_TOO_LARGE in ${Date.now() - t0} ms after ${c.sent()} bytes`);
  });

  test('a JPEG whose header claims 60000x60000: 413 IMAGE_TOO_LARGE without decoding it', async (t) => {
    const before = (await infer.peakRssKb()) ?? 0;
    const t0 = Date.now();
    const r = await inferJpeg(withClaimedSize(jpeg, 60000, 60000));
    assert.equal(r.status, 413, JSON.stringify(r.body));
    assert.equal(r.body.code, 'IMAGE_TOO_LARGE');
    const grew = ((await infer.peakRssKb()) ?? 0) - before;
    // Decoding 3.6 gigapixels would need ~10 GiB.
    assert.ok(grew < 100 * 1024, `peak RSS grew by ${grew} KiB`);
    t.diagnostic(`60000x60000 header: 413 IMAGE_TOO_LARGE in ${Date.now() - t0} ms: ${r.body.message}`);
  });

  test('multipart with a thousand parts: 400 BAD_REQUEST, never a framework code', async (t) => {
    const boundary = 'hostileboundary';
    const part = (name: string, value: string, file = false): string =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file ? `; filename="${name}.jpg"\r\nContent-Type: image/jpeg` : ''}\r\n\r\n${value}\r\n`;
    const fields = Array.from({ length: 1000 }, (_, i) => part(`f${i}`, 'x')).join('');
    const files = Array.from({ length: 1000 }, (_, i) => part(`image${i === 0 ? '' : i}`, 'jpegbytes', true)).join('');
    for (const [label, body] of [
      ['fields', fields],
      ['files', files],
    ] as const) {
      const t0 = Date.now();
      const r = await inferJpeg(Buffer.from(`${body}--${boundary}--\r\n`), { 'content-type': `multipart/form-data; boundary=${boundary}` });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 'BAD_REQUEST');
      t.diagnostic(`1000 ${label}: ${r.status} ${r.body.code} in ${Date.now() - t0} ms: ${r.body.message}`);
    }
  });

  test('a 1 MB request header: 431 HEADERS_TOO_LARGE', async (t) => {
    const c = await client();
    await c.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(1024 * 1024)}\r\n\r\n`);
    const a = parseRawAnswer(await c.closed(3000));
    assert.equal(a.status, 431);
    assert.equal((a.body as { code: string }).code, 'HEADERS_TOO_LARGE');
    t.diagnostic('1 MB header: 431 HEADERS_TOO_LARGE, connection closed');
  });

  test('unknown routes answer 404 NOT_FOUND in our shape', async () => {
    const r = await request(`${infer.url}/nope`, { headers: AUTH });
    assert.equal(r.statusCode, 404);
    assert.equal(((await r.body.json()) as { code: string }).code, 'NOT_FOUND');
  });
});

describe('raw RGB bodies (application/x-rgb24)', () => {
  const raw = (width: number, height: number) => Buffer.alloc(width * height * 3, 0x80);
  async function inferRaw(body: Buffer, query: string): Promise<{ status: number; body: any }> {
    const r = await request(`${infer.url}/v1/models/m/infer?${query}`, { method: 'POST', body, headers: { 'content-type': 'application/x-rgb24', ...AUTH }, headersTimeout: 20_000, bodyTimeout: 20_000 });
    const text = await r.body.text();
    return { status: r.statusCode, body: text ? JSON.parse(text) : undefined };
  }

  test('each bad size, length or body gets its code; the service stays up and serves raw frames', async (t) => {
    const ok = await inferRaw(raw(64, 48), 'width=64&height=48&stage=detect');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.timings.decode < 5, true, `decode ${ok.body.timings.decode} ms`);
    const cases: Array<[string, Buffer, string, number, string]> = [
      ['no width', raw(64, 48), 'height=48', 400, 'BAD_REQUEST'],
      ['no size at all', raw(64, 48), '', 400, 'BAD_REQUEST'],
      ['empty width', raw(64, 48), 'width=&height=48', 400, 'BAD_REQUEST'],
      ['word', raw(64, 48), 'width=sixty&height=48', 400, 'BAD_REQUEST'],
      ['fraction', raw(64, 48), 'width=64.0&height=48', 400, 'BAD_REQUEST'],
      ['negative', raw(64, 48), 'width=-64&height=48', 400, 'BAD_REQUEST'],
      ['hex', raw(64, 48), 'width=0x40&height=48', 400, 'BAD_REQUEST'],
      ['exponent', raw(64, 48), 'width=64e0&height=48', 400, 'BAD_REQUEST'],
      ['zero', Buffer.alloc(3), 'width=0&height=1', 400, 'BAD_REQUEST'],
      ['repeated width', raw(64, 48), 'width=64&width=64&height=48', 400, 'BAD_REQUEST'],
      ['over the pixel limit', raw(64, 48), 'width=100000&height=100000', 413, 'IMAGE_TOO_LARGE'],
      ['a side of 30 digits', raw(64, 48), `width=${'9'.repeat(30)}&height=1`, 413, 'IMAGE_TOO_LARGE'],
      ['one byte short', raw(64, 48).subarray(1), 'width=64&height=48', 422, 'IMAGE_INVALID'],
      ['one byte long', Buffer.concat([raw(64, 48), Buffer.alloc(1)]), 'width=64&height=48', 422, 'IMAGE_INVALID'],
      ['the size swapped for a non-divisor', raw(64, 48), 'width=48&height=65', 422, 'IMAGE_INVALID'],
      ['empty body', Buffer.alloc(0), 'width=64&height=48', 400, 'IMAGE_EMPTY'],
      ['empty body, no size', Buffer.alloc(0), '', 400, 'IMAGE_EMPTY'],
    ];
    for (const [label, body, query, status, code] of cases) {
      const r = await inferRaw(body, query);
      assert.equal(r.status, status, `${label}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, code, `${label}: ${JSON.stringify(r.body)}`);
      t.diagnostic(`${label}: ${status} ${code}: ${r.body.message}`);
    }
    assert.ok(infer.alive(), infer.logs());
    assert.equal(await inFlight(), 0);
    assert.equal((await inferRaw(raw(64, 48), 'width=64&height=48')).status, 200, 'still serving');
    // A raw body of another size goes through sharp (resize), as a full run.
    assert.equal((await inferRaw(raw(100, 30), 'width=100&height=30')).status, 200);
  });

  test('a declared length that disagrees with the size: 422 IMAGE_INVALID before any body byte', async () => {
    for (const [query, length, code] of [
      ['width=64&height=48', 64 * 48 * 3 + 7, 'IMAGE_INVALID'],
      ['width=100000&height=100000', 1000, 'IMAGE_TOO_LARGE'],
      ['height=48', 1000, 'BAD_REQUEST'],
    ] as const) {
      const c = await client();
      await c.write(head(`/v1/models/m/infer?${query}`, { 'content-type': 'application/x-rgb24', 'content-length': length, ...AUTH }));
      const a = parseRawAnswer(await c.waitFor('}', 2000));
      assert.equal((a.body as { code: string }).code, code, query);
      await c.closed(2000);
    }
    assert.equal(await inFlight(), 0);
  });
});

describe('bearer token', () => {
  test('a wrong or missing token gets 401 UNAUTHORIZED before the body is read; the right one is served', async () => {
    for (const authorization of ['Bearer wrong', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, '']) {
      const c = await client();
      await c.write(head('/v1/models/m/infer', { 'content-type': 'image/jpeg', 'content-length': MAX_IMAGE_BYTES, ...(authorization ? { authorization } : {}) }));
      const a = parseRawAnswer(await c.waitFor('}', 2000));
      assert.equal(a.status, 401);
      assert.equal((a.body as { code: string }).code, 'UNAUTHORIZED');
      c.destroy();
    }
    assert.equal((await inferJpeg()).status, 200);
  });
});

test('peak RSS of infer during the client-abuse cases', async (t) => {
  assert.ok(infer.alive(), infer.logs());
  assert.equal(await inFlight(), 0);
  const kb = await infer.peakRssKb();
  t.diagnostic(`infer peak RSS (VmHWM) after the client-abuse cases: ${kb === undefined ? 'n/a' : `${(kb / 1024).toFixed(1)} MiB`}`);
});
