/**
 * Hostile model servers against the real infer process: every misbehaviour ends in a coded
 * JSON error within a bounded time, the process stays alive, and a good model still loads
 * and infers afterwards. (undici 7 crashed infer on a server that closed after the body.)
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
import {
  closeDelimited,
  connectionClose,
  drip,
  gzipBomb,
  gzipBombBody,
  hugeHeader,
  redirect,
  resetMidBody,
  shortBody,
  startFileServer,
  startRawServer,
  statusOnly,
  type LoopbackServer,
} from './support/hostile-http.js';
import { startInferProcess, type InferProcess } from './support/infer-process.js';

/** Short enough for the test, long enough for an honest loopback download. */
const DOWNLOAD_DEADLINE_MS = 1500;
/** Every bad case must be answered within this (the drip case needs the deadline plus a load). */
const ANSWER_BOUND_MS = 10_000;

let work: string;
let archive: Buffer;
let jpeg: Buffer;
let good: LoopbackServer;
let hostile: LoopbackServer;
let elsewhere: LoopbackServer;
let infer: InferProcess;

async function buildArchive(): Promise<Buffer> {
  const n = 2;
  const values = new Float32Array(6 * n);
  values.set([16, 16, 8, 8, 0.9], 0);
  const model = buildConstantOutputModel({ inputDims: [1, 3, 64, 64], outputDims: [1, 6, n], values, metadata: { task: 'detect', names: "{0: 'thing', 1: 'other'}" } });
  return buildMpta({ pipeline: { pipeline: { modelId: 'fake', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(model) } });
}

interface Answer {
  status: number;
  body: { code?: string; message?: string; state?: string };
  ms: number;
}

async function putModel(modelId: string, modelUrl: string): Promise<Answer> {
  const t0 = Date.now();
  const r = await request(`${infer.url}/v1/models/${modelId}`, {
    method: 'PUT',
    body: JSON.stringify({ modelUrl }),
    headers: { 'content-type': 'application/json' },
    headersTimeout: ANSWER_BOUND_MS,
    bodyTimeout: ANSWER_BOUND_MS,
  });
  return { status: r.statusCode, body: (await r.body.json()) as Answer['body'], ms: Date.now() - t0 };
}

async function inferWith(modelId: string, modelUrl?: string): Promise<Answer> {
  const t0 = Date.now();
  const query = modelUrl ? `?modelUrl=${encodeURIComponent(modelUrl)}` : '';
  const r = await request(`${infer.url}/v1/models/${modelId}/infer${query}`, {
    method: 'POST',
    body: jpeg,
    headers: { 'content-type': 'image/jpeg' },
    headersTimeout: ANSWER_BOUND_MS,
    bodyTimeout: ANSWER_BOUND_MS,
  });
  return { status: r.statusCode, body: (await r.body.json()) as Answer['body'], ms: Date.now() - t0 };
}

let fresh = 0;
/** A good model still loads (new id: a real download) and infers on the same process. */
async function stillServesAGoodModel(): Promise<void> {
  assert.ok(infer.alive(), `infer died:\n${infer.logs()}`);
  const id = `good-${++fresh}`;
  const loaded = await putModel(id, `${good.base}/good.mpta`);
  assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
  const answer = await inferWith(id);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  await request(`${infer.url}/v1/models/${id}`, { method: 'DELETE' }).then((r) => r.body.dump());
}

async function expectCoded(answer: Answer, status: number, code: string, t: { diagnostic(m: string): void }): Promise<void> {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.code, code, JSON.stringify(answer.body));
  assert.ok(typeof answer.body.message === 'string' && answer.body.message.length > 0);
  assert.ok(answer.ms < ANSWER_BOUND_MS, `answered in ${answer.ms} ms`);
  t.diagnostic(`${status} ${code} in ${answer.ms} ms: ${answer.body.message}`);
  await stillServesAGoodModel();
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hostile-models-'));
  archive = await buildArchive();
  jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  good = await startFileServer({ '/good.mpta': archive });
  elsewhere = await startFileServer({ '/good.mpta': archive });
  const bomb = gzipBombBody();
  hostile = await startRawServer({
    '/close-delimited.mpta': closeDelimited(archive),
    '/connection-close.mpta': connectionClose(archive),
    '/reset.mpta': resetMidBody(archive),
    '/short.mpta': shortBody(archive),
    '/loop': redirect('/loop'),
    '/to-file': redirect('file:///etc/passwd'),
    // localhost is not 127.0.0.1 for the allow-list, and the port differs too.
    '/to-elsewhere': redirect(`http://localhost:${elsewhere.port}/good.mpta`),
    '/gzip-bomb.mpta': gzipBomb(bomb),
    '/huge-header.mpta': hugeHeader(1024 * 1024),
    '/error.mpta': statusOnly(500),
    '/drip.mpta': drip(archive, 1000),
  });
  infer = await startInferProcess({
    MODEL_CACHE_DIR: join(work, 'cache'),
    ALLOW_FILE_MODEL_URLS: 'false',
    MODEL_URL_ALLOW: `127.0.0.1:${good.port},127.0.0.1:${hostile.port}`,
    MODEL_DOWNLOAD_TIMEOUT_MS: String(DOWNLOAD_DEADLINE_MS),
    MODEL_BODY_TIMEOUT_MS: '5000',
    MODEL_CONNECT_TIMEOUT_MS: '2000',
    MODEL_FAILED_RETRY_MS: '0',
    MAX_MODELS: '4',
  });
});

after(async () => {
  await infer?.stop();
  await Promise.all([good?.close(), hostile?.close(), elsewhere?.close()]);
  await rm(work, { recursive: true, force: true });
});

describe('valid servers that close the connection after the body', () => {
  test('ten downloads in a row from an HTTP/1.0 close-delimited server all load', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await putModel(`close-seq-${i}`, `${hostile.base}/close-delimited.mpta`);
      assert.equal(r.status, 200, `download ${i}: ${JSON.stringify(r.body)}\n${infer.logs()}`);
    }
    assert.equal(hostile.hits.get('/close-delimited.mpta'), 10);
    assert.ok(infer.alive());
  });

  test('six at once from a `Connection: close` server all load', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => putModel(`close-par-${i}`, `${hostile.base}/connection-close.mpta`)));
    assert.deepEqual(
      answers.map((a) => a.status),
      answers.map(() => 200),
      JSON.stringify(answers.map((a) => a.body)),
    );
    assert.ok(infer.alive());
    await stillServesAGoodModel();
  });
});

describe('broken servers end in coded errors and infer keeps serving', () => {
  test('connection reset mid-body: 502 MODEL_DOWNLOAD_FAILED', async (t) => {
    await expectCoded(await putModel('reset', `${hostile.base}/reset.mpta`), 502, 'MODEL_DOWNLOAD_FAILED', t);
  });

  test('Content-Length longer than the body, then close: 502 MODEL_DOWNLOAD_FAILED', async (t) => {
    await expectCoded(await putModel('short', `${hostile.base}/short.mpta`), 502, 'MODEL_DOWNLOAD_FAILED', t);
  });

  test('a redirect loop: 502 MODEL_DOWNLOAD_FAILED', async (t) => {
    await expectCoded(await putModel('loop', `${hostile.base}/loop`), 502, 'MODEL_DOWNLOAD_FAILED', t);
  });

  test('a redirect to file: is refused, 403 MODEL_URL_FORBIDDEN', async (t) => {
    await expectCoded(await putModel('to-file', `${hostile.base}/to-file`), 403, 'MODEL_URL_FORBIDDEN', t);
  });

  test('a redirect to a host outside MODEL_URL_ALLOW is refused, 403 MODEL_URL_FORBIDDEN', async (t) => {
    await expectCoded(await putModel('to-elsewhere', `${hostile.base}/to-elsewhere`), 403, 'MODEL_URL_FORBIDDEN', t);
    assert.equal(elsewhere.hits.size, 0, 'the unlisted host was never contacted');
  });

  test('a gzip bomb is never inflated: 422 ARCHIVE_NOT_ZIP', async (t) => {
    const before = (await infer.peakRssKb()) ?? 0;
    await expectCoded(await putModel('gzip-bomb', `${hostile.base}/gzip-bomb.mpta`), 422, 'ARCHIVE_NOT_ZIP', t);
    const after = (await infer.peakRssKb()) ?? 0;
    // Inflating even a tenth of the 2 GiB would show here; the wire body is only ~2 MiB.
    assert.ok(after - before < 100 * 1024, `peak RSS grew by ${after - before} KiB`);
  });

  test('a 1 MB response header: 502 MODEL_DOWNLOAD_FAILED', async (t) => {
    await expectCoded(await putModel('huge-header', `${hostile.base}/huge-header.mpta`), 502, 'MODEL_DOWNLOAD_FAILED', t);
  });

  test('HTTP 500: 502 MODEL_DOWNLOAD_FAILED, also through the infer route', async (t) => {
    await expectCoded(await putModel('error', `${hostile.base}/error.mpta`), 502, 'MODEL_DOWNLOAD_FAILED', t);
    await expectCoded(await inferWith('error-infer', `${hostile.base}/error.mpta`), 502, 'MODEL_DOWNLOAD_FAILED', t);
  });

  test('a server dripping one byte per second runs into MODEL_DOWNLOAD_TIMEOUT_MS: 504 MODEL_DOWNLOAD_TIMEOUT', async (t) => {
    const answer = await putModel('drip', `${hostile.base}/drip.mpta`);
    assert.ok(answer.ms >= DOWNLOAD_DEADLINE_MS - 100, `ended by the deadline (${answer.ms} ms)`);
    await expectCoded(answer, 504, 'MODEL_DOWNLOAD_TIMEOUT', t);
    const info = (await (await request(`${infer.url}/v1/models/drip`)).body.json()) as { state: string };
    assert.equal(info.state, 'failed', 'not left in loading');
  });
});

test('peak RSS of infer during the model-server cases', async (t) => {
  assert.ok(infer.alive());
  const kb = await infer.peakRssKb();
  t.diagnostic(`infer peak RSS (VmHWM) after the model-server cases: ${kb === undefined ? 'n/a' : `${(kb / 1024).toFixed(1)} MiB`}`);
});
