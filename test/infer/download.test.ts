import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { buildMpta } from '@detector-worker/testkit/mpta';
import { CodedError } from '@detector-worker/shared/errors';
import { downloadArchive, type DownloadOptions } from '@detector-worker/infer/models/download';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback server whose routes the tests set; open sockets are destroyed on close. */
async function startServer(routes: Record<string, Handler>): Promise<{ server: Server; base: string; port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const route = routes[req.url ?? ''];
    if (route) route(req, res);
    else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const baseOpts: DownloadOptions = { allowFileUrls: false, maxBytes: 1024 * 1024, connectTimeoutMs: 2000, bodyTimeoutMs: 2000, headersTimeoutMs: 2000 };

async function expectCode(promise: Promise<unknown>, code: string, status?: number): Promise<CodedError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof CodedError, `expected a CodedError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (status !== undefined) assert.equal(err.statusCode, status);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

describe('downloadArchive', () => {
  let zip: Buffer;
  let dir: string;
  let srv: Awaited<ReturnType<typeof startServer>>;
  let other: Awaited<ReturnType<typeof startServer>>;
  const seenAuth: Array<string | undefined> = [];
  const seenEncoding: Array<string | undefined> = [];

  before(async () => {
    zip = await buildMpta({ pipeline: { hello: 'world' }, files: { 'm.onnx': Buffer.alloc(2048, 7) } });
    dir = await mkdtemp(join(tmpdir(), 'dw-download-'));
    other = await startServer({
      '/elsewhere.mpta': (req, res) => {
        seenAuth.push(req.headers.authorization);
        res.end(zip);
      },
    });
    srv = await startServer({
      '/ok.mpta': (req, res) => {
        seenAuth.push(req.headers.authorization);
        res.setHeader('content-length', String(zip.length));
        res.end(zip);
      },
      '/chunked.mpta': (_req, res) => {
        // No content-length: chunked transfer; 4 x 400 KiB exceeds a 1 MiB limit.
        let sent = 0;
        const push = (): void => {
          if (sent >= 4) return void res.end();
          sent++;
          const chunk = Buffer.alloc(400 * 1024, 0);
          if (sent === 1) zip.copy(chunk, 0, 0, 4);
          if (res.write(chunk)) setImmediate(push);
          else res.once('drain', push);
        };
        push();
      },
      '/big-declared.mpta': (_req, res) => {
        res.setHeader('content-length', String(10 * 1024 * 1024));
        res.write(zip.subarray(0, 4));
        // Never finish: the client must give up on the header alone.
      },
      '/no-headers.mpta': () => {
        // Never answer.
      },
      '/stall.mpta': (_req, res) => {
        res.setHeader('content-length', String(zip.length));
        res.write(zip.subarray(0, 100));
        // ...and stall.
      },
      '/html': (_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end('<html>login required</html>');
      },
      '/empty': (_req, res) => res.end(),
      '/redirect-ok': (_req, res) => {
        res.statusCode = 302;
        res.setHeader('location', '/ok.mpta');
        res.end();
      },
      '/redirect-other': (_req, res) => {
        res.statusCode = 307;
        res.setHeader('location', `${other.base}/elsewhere.mpta`);
        res.end();
      },
      '/redirect-file': (_req, res) => {
        res.statusCode = 302;
        res.setHeader('location', 'file:///etc/passwd');
        res.end();
      },
      '/loop': (_req, res) => {
        res.statusCode = 301;
        res.setHeader('location', '/loop');
        res.end();
      },
      '/error': (_req, res) => {
        res.statusCode = 500;
        res.end('boom');
      },
      '/drip.mpta': (req, res) => {
        // A byte every 50 ms: the idle body timeout never fires, only the overall deadline can.
        res.setHeader('content-length', String(zip.length));
        let at = 0;
        const timer = setInterval(() => {
          if (at >= zip.length) return clearInterval(timer);
          res.write(zip.subarray(at, ++at));
        }, 50);
        req.socket.once('close', () => clearInterval(timer));
      },
      '/slow-hop-1': (_req, res) => {
        setTimeout(() => {
          res.statusCode = 302;
          res.setHeader('location', '/slow-hop-2');
          res.end();
        }, 250);
      },
      '/slow-hop-2': (_req, res) => {
        setTimeout(() => {
          res.statusCode = 302;
          res.setHeader('location', '/drip.mpta');
          res.end();
        }, 250);
      },
      '/gzip.mpta': (req, res) => {
        seenEncoding.push(req.headers['accept-encoding']);
        res.setHeader('content-encoding', 'gzip');
        res.end(gzipSync(Buffer.alloc(1024 * 1024)));
      },
    });
  });

  after(async () => {
    await srv.close();
    await other.close();
    await rm(dir, { recursive: true, force: true });
  });

  const noLeftovers = async (name: string): Promise<void> => {
    const files = await readdir(dir);
    assert.deepEqual(
      files.filter((f) => f.includes(name)),
      [],
      `leftover files for ${name}: ${files.join(', ')}`,
    );
  };

  test('saves the archive atomically and reports size, hash and progress', async () => {
    const dest = join(dir, 'ok.mpta');
    const progress: Array<[number, number | null]> = [];
    const result = await downloadArchive(`${srv.base}/ok.mpta`, dest, { ...baseOpts, onProgress: (r, t) => progress.push([r, t]) });
    assert.equal(result.bytes, zip.length);
    assert.equal(result.sha256, createHash('sha256').update(zip).digest('hex'));
    assert.deepEqual(await readFile(dest), zip);
    assert.ok(progress.length > 0);
    assert.deepEqual(progress.at(-1), [zip.length, zip.length]);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.part')), []);
  });

  test('creates the destination folder', async () => {
    const dest = join(dir, 'nested', 'deeper', 'x.mpta');
    const result = await downloadArchive(`${srv.base}/ok.mpta`, dest, baseOpts);
    assert.equal(result.bytes, zip.length);
  });

  test('404 becomes MODEL_DOWNLOAD_FAILED with the upstream status', async () => {
    const err = await expectCode(downloadArchive(`${srv.base}/missing.mpta`, join(dir, 'missing.mpta'), baseOpts), 'MODEL_DOWNLOAD_FAILED', 502);
    assert.equal(err.details?.upstreamStatus, 404);
    assert.match(err.message, /404/);
    await noLeftovers('missing.mpta');
  });

  test('500 becomes MODEL_DOWNLOAD_FAILED', async () => {
    const err = await expectCode(downloadArchive(`${srv.base}/error`, join(dir, 'error.mpta'), baseOpts), 'MODEL_DOWNLOAD_FAILED', 502);
    assert.equal(err.details?.upstreamStatus, 500);
  });

  test('connection refused becomes MODEL_DOWNLOAD_FAILED', async () => {
    // Take a free port and close it again so nothing listens there.
    const tmp = await startServer({});
    const url = `${tmp.base}/x.mpta`;
    await tmp.close();
    const err = await expectCode(downloadArchive(url, join(dir, 'refused.mpta'), baseOpts), 'MODEL_DOWNLOAD_FAILED', 502);
    assert.match(err.message, /ECONNREFUSED/);
    await noLeftovers('refused.mpta');
  });

  test('a server that never sends headers times out with MODEL_DOWNLOAD_TIMEOUT', async () => {
    await expectCode(
      downloadArchive(`${srv.base}/no-headers.mpta`, join(dir, 'noheaders.mpta'), { ...baseOpts, headersTimeoutMs: 200 }),
      'MODEL_DOWNLOAD_TIMEOUT',
      504,
    );
    await noLeftovers('noheaders.mpta');
  });

  test('a body that stalls times out with MODEL_DOWNLOAD_TIMEOUT and leaves no file', async () => {
    await expectCode(downloadArchive(`${srv.base}/stall.mpta`, join(dir, 'stall.mpta'), { ...baseOpts, bodyTimeoutMs: 200 }), 'MODEL_DOWNLOAD_TIMEOUT', 504);
    await noLeftovers('stall.mpta');
  });

  test('a Content-Length over the limit is refused up front', async () => {
    const err = await expectCode(downloadArchive(`${srv.base}/big-declared.mpta`, join(dir, 'big.mpta'), baseOpts), 'MODEL_TOO_LARGE', 413);
    assert.equal(err.details?.maxBytes, baseOpts.maxBytes);
    await noLeftovers('big.mpta');
  });

  test('a chunked body over the limit is cut off while streaming', async () => {
    await expectCode(downloadArchive(`${srv.base}/chunked.mpta`, join(dir, 'chunked.mpta'), baseOpts), 'MODEL_TOO_LARGE', 413);
    await noLeftovers('chunked.mpta');
  });

  test('a body that is not a zip is ARCHIVE_NOT_ZIP', async () => {
    await expectCode(downloadArchive(`${srv.base}/html`, join(dir, 'html.mpta'), baseOpts), 'ARCHIVE_NOT_ZIP', 422);
    await expectCode(downloadArchive(`${srv.base}/empty`, join(dir, 'empty.mpta'), baseOpts), 'ARCHIVE_NOT_ZIP', 422);
    await noLeftovers('html.mpta');
    await noLeftovers('empty.mpta');
  });

  test('follows redirects within the allow-list', async () => {
    const result = await downloadArchive(`${srv.base}/redirect-ok`, join(dir, 'redirected.mpta'), { ...baseOpts, allowedHosts: [`127.0.0.1:${srv.port}`] });
    assert.equal(result.bytes, zip.length);
  });

  test('refuses a redirect to a host outside the allow-list', async () => {
    const opts = { ...baseOpts, allowedHosts: [`127.0.0.1:${srv.port}`] };
    await expectCode(downloadArchive(`${srv.base}/redirect-other`, join(dir, 'other.mpta'), opts), 'MODEL_URL_FORBIDDEN', 403);
    await noLeftovers('other.mpta');
  });

  test('refuses a first URL outside the allow-list', async () => {
    await expectCode(downloadArchive(`${srv.base}/ok.mpta`, join(dir, 'nope.mpta'), { ...baseOpts, allowedHosts: ['models.example.com'] }), 'MODEL_URL_FORBIDDEN', 403);
    await noLeftovers('nope.mpta');
  });

  test('never follows a redirect to file://, even when file URLs are allowed', async () => {
    await expectCode(downloadArchive(`${srv.base}/redirect-file`, join(dir, 'file-redirect.mpta'), { ...baseOpts, allowFileUrls: true }), 'MODEL_URL_FORBIDDEN', 403);
  });

  test('gives up after a few redirects', async () => {
    await expectCode(downloadArchive(`${srv.base}/loop`, join(dir, 'loop.mpta'), baseOpts), 'MODEL_DOWNLOAD_FAILED', 502);
  });

  test('credentials in the URL become Basic auth for that origin only and never reach messages', async () => {
    seenAuth.length = 0;
    const url = `http://user:s3cret@127.0.0.1:${srv.port}/ok.mpta`;
    await downloadArchive(url, join(dir, 'auth.mpta'), baseOpts);
    assert.equal(seenAuth[0], `Basic ${Buffer.from('user:s3cret').toString('base64')}`);

    seenAuth.length = 0;
    await downloadArchive(`http://user:s3cret@127.0.0.1:${srv.port}/redirect-other`, join(dir, 'auth2.mpta'), baseOpts);
    assert.deepEqual(seenAuth, [undefined], 'authorization must not follow a redirect to another origin');

    const err = await expectCode(downloadArchive(`http://user:s3cret@127.0.0.1:${srv.port}/missing`, join(dir, 'auth3.mpta'), baseOpts), 'MODEL_DOWNLOAD_FAILED');
    assert.doesNotMatch(err.message, /s3cret/);
    assert.doesNotMatch(JSON.stringify(err.toJSON()), /s3cret/);
  });

  test('file:// URLs work only when allowed', async () => {
    const src = join(dir, 'source.zip');
    await writeFile(src, zip);
    const url = pathToFileURL(src).href;
    await expectCode(downloadArchive(url, join(dir, 'from-file.mpta'), baseOpts), 'MODEL_URL_FORBIDDEN', 403);
    const result = await downloadArchive(url, join(dir, 'from-file.mpta'), { ...baseOpts, allowFileUrls: true });
    assert.equal(result.bytes, zip.length);
    assert.deepEqual(await readFile(join(dir, 'from-file.mpta')), zip);
    await expectCode(downloadArchive(url, join(dir, 'small.mpta'), { ...baseOpts, allowFileUrls: true, maxBytes: 100 }), 'MODEL_TOO_LARGE', 413);
    await expectCode(downloadArchive(pathToFileURL(join(dir, 'absent.zip')).href, join(dir, 'absent.mpta'), { ...baseOpts, allowFileUrls: true }), 'MODEL_DOWNLOAD_FAILED');
    await noLeftovers('small.mpta');
  });

  test('a caller abort cancels the download', async () => {
    const controller = new AbortController();
    const pending = downloadArchive(`${srv.base}/no-headers.mpta`, join(dir, 'aborted.mpta'), { ...baseOpts, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expectCode(pending, 'MODEL_DOWNLOAD_ABORTED');
    await noLeftovers('aborted.mpta');
  });

  test('a server that drips bytes runs into the overall deadline (MODEL_DOWNLOAD_TIMEOUT)', async () => {
    const t0 = Date.now();
    const err = await expectCode(
      downloadArchive(`${srv.base}/drip.mpta`, join(dir, 'drip.mpta'), { ...baseOpts, bodyTimeoutMs: 2000, deadlineMs: 400 }),
      'MODEL_DOWNLOAD_TIMEOUT',
      504,
    );
    assert.equal(err.details?.deadlineMs, 400);
    assert.ok(Date.now() - t0 < 1900, 'ended by the deadline, not by the idle timeout');
    await noLeftovers('drip.mpta');
  });

  test('the deadline spans redirect hops', async () => {
    // Each hop is well inside the header timeout; together they are past the deadline.
    await expectCode(
      downloadArchive(`${srv.base}/slow-hop-1`, join(dir, 'hops.mpta'), { ...baseOpts, headersTimeoutMs: 2000, deadlineMs: 400 }),
      'MODEL_DOWNLOAD_TIMEOUT',
      504,
    );
    await noLeftovers('hops.mpta');
  });

  test('a caller abort is still MODEL_DOWNLOAD_ABORTED when a deadline is set', async () => {
    const controller = new AbortController();
    const pending = downloadArchive(`${srv.base}/no-headers.mpta`, join(dir, 'aborted2.mpta'), { ...baseOpts, deadlineMs: 5000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expectCode(pending, 'MODEL_DOWNLOAD_ABORTED');
  });

  test('a download inside its deadline succeeds', async () => {
    const result = await downloadArchive(`${srv.base}/ok.mpta`, join(dir, 'in-time.mpta'), { ...baseOpts, deadlineMs: 5000 });
    assert.equal(result.bytes, zip.length);
  });

  test('asks for identity encoding and never inflates a gzip body (ARCHIVE_NOT_ZIP)', async () => {
    seenEncoding.length = 0;
    await expectCode(downloadArchive(`${srv.base}/gzip.mpta`, join(dir, 'gzip.mpta'), baseOpts), 'ARCHIVE_NOT_ZIP', 422);
    assert.deepEqual(seenEncoding, ['identity']);
    await noLeftovers('gzip.mpta');
  });

  test('invalid URLs and schemes are MODEL_URL_INVALID', async () => {
    await expectCode(downloadArchive('not a url', join(dir, 'bad.mpta'), baseOpts), 'MODEL_URL_INVALID', 400);
    await expectCode(downloadArchive('ftp://127.0.0.1/x.mpta', join(dir, 'bad.mpta'), baseOpts), 'MODEL_URL_INVALID', 400);
    await expectCode(downloadArchive('javascript:alert(1)', join(dir, 'bad.mpta'), baseOpts), 'MODEL_URL_INVALID', 400);
  });
});
