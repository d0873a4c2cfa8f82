/**
 * Fetches an `.mpta` archive from a URL the caller does not control (CMS subscriptions,
 * API requests) onto local disk. Everything about the URL and the answer is hostile: the
 * scheme and host are checked against the configuration on every redirect hop, the size is
 * capped before and while streaming, every phase has a timeout and the whole download has a
 * deadline (a server dripping a byte a second never trips an idle timeout), the body is never
 * decompressed (a gzip bomb stays a few bytes that fail the zip check), and the bytes land in a temp
 * file beside the destination that is renamed into place only when complete and zip-shaped,
 * so a reader never sees a partial archive.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, type WriteStream } from 'node:fs';
import { mkdir, open as openFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { redactUrl, type Logger } from '@detector-worker/shared/logging';

export interface DownloadOptions {
  /** Allow `file://` URLs (local development, tests); never followed from a redirect. */
  allowFileUrls: boolean;
  /** Hostnames or host:port; `*.example.com` matches any subdomain. Empty/undefined: any host. */
  allowedHosts?: string[];
  maxBytes: number;
  connectTimeoutMs: number;
  /** Longest pause between two body chunks. */
  bodyTimeoutMs: number;
  /** Longest wait for the response headers; defaults to bodyTimeoutMs. */
  headersTimeoutMs?: number;
  /** Wall-clock limit for the whole download, redirects included; none when undefined or 0. */
  deadlineMs?: number;
  onProgress?: (received: number, total: number | null) => void;
  signal?: AbortSignal;
  /** Redirect hops are logged at debug level, with credentials removed. */
  logger?: Logger;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Local-file signature of a zip entry, and the end record of an empty zip. */
const ZIP_SIGNATURES = [Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('PK\x05\x06', 'latin1')];

export async function downloadArchive(url: string, destFile: string, opts: DownloadOptions): Promise<DownloadResult> {
  const target = parseArchiveUrl(url);
  if (target.protocol === 'file:') {
    if (!opts.allowFileUrls) throw new CodedError('MODEL_URL_FORBIDDEN', 'file:// model URLs are disabled on this service', 403, { url: redactUrl(url) });
  } else {
    checkHostAllowed(target, opts.allowedHosts);
  }
  const deadline = startDeadline(opts);
  try {
    const bounded = deadline ? { ...opts, signal: deadline.signal } : opts;
    return target.protocol === 'file:' ? await saveFromFile(target, destFile, bounded) : await saveFromHttp(target, destFile, bounded);
  } finally {
    deadline?.clear();
  }
}

/**
 * The caller's signal joined with a timer for the overall deadline. The timer aborts with a
 * TimeoutError, which networkError() reports as MODEL_DOWNLOAD_TIMEOUT.
 */
function startDeadline(opts: DownloadOptions): { signal: AbortSignal; clear: () => void } | undefined {
  const ms = opts.deadlineMs;
  if (!ms || ms <= 0) return undefined;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`the download took longer than ${ms} ms`, 'TimeoutError')), ms);
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  return { signal, clear: () => clearTimeout(timer) };
}

/** Parses and vets the scheme; the result never carries credentials into messages. */
export function parseArchiveUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CodedError('MODEL_URL_INVALID', `model URL is not a valid URL: ${truncate(redactUrl(String(url)))}`, 400);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && parsed.protocol !== 'file:') {
    throw new CodedError('MODEL_URL_INVALID', `model URL scheme ${parsed.protocol} is not supported (use http, https or file)`, 400, { url: redactUrl(url) });
  }
  return parsed;
}

/**
 * Whether the URL's host is on the allow-list. Entries: `host`, `host:port`, `*.domain`,
 * `*.domain:port`, `[v6]`, `[v6]:port`. A wildcard matches subdomains only, not the domain
 * itself. An entry without a port matches every port.
 */
export function isHostAllowed(url: URL, allowedHosts: readonly string[] | undefined): boolean {
  if (!allowedHosts || allowedHosts.length === 0) return true;
  const host = normaliseHost(url.hostname);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return allowedHosts.some((raw) => {
    const entry = parseHostEntry(raw);
    if (!entry) return false;
    if (entry.port !== undefined && entry.port !== port) return false;
    if (entry.host.startsWith('*.')) {
      const suffix = entry.host.slice(1);
      return host.endsWith(suffix) && host.length > suffix.length;
    }
    return host === entry.host;
  });
}

function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function parseHostEntry(raw: string): { host: string; port?: number } | undefined {
  const text = raw.trim().toLowerCase();
  if (!text) return undefined;
  let host = text;
  let portText: string | undefined;
  const bracketed = /^(\[[^\]]+\])(?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (text.split(':').length === 2) {
    [host, portText] = text.split(':') as [string, string];
  } else if (text.includes(':')) {
    host = `[${text}]`; // a bare IPv6 address; URL.hostname keeps the brackets
  }
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) return undefined;
  return port === undefined ? { host: normaliseHost(host) } : { host: normaliseHost(host), port };
}

function checkHostAllowed(url: URL, allowedHosts: readonly string[] | undefined): void {
  if (!isHostAllowed(url, allowedHosts)) {
    throw new CodedError('MODEL_URL_FORBIDDEN', `model host ${url.host} is not in the allowed hosts`, 403, { url: redactUrl(url.href) });
  }
}

async function saveFromFile(url: URL, destFile: string, opts: DownloadOptions): Promise<DownloadResult> {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (err) {
    throw new CodedError('MODEL_URL_INVALID', `file URL cannot be used: ${errorMessage(err)}`, 400, { url: redactUrl(url.href) });
  }
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new CodedError('MODEL_DOWNLOAD_FAILED', `${redactUrl(url.href)} is not a regular file`, 502);
    size = info.size;
  } catch (err) {
    if (err instanceof CodedError) throw err;
    throw new CodedError('MODEL_DOWNLOAD_FAILED', `cannot read ${redactUrl(url.href)}: ${errorMessage(err)}`, 502, { reason: errCode(err) }, { cause: err });
  }
  if (size > opts.maxBytes) throw tooLarge(size, opts.maxBytes);
  return saveStream(() => createReadStream(path), size, destFile, opts, url);
}

async function saveFromHttp(first: URL, destFile: string, opts: DownloadOptions): Promise<DownloadResult> {
  const headersTimeout = opts.headersTimeoutMs ?? opts.bodyTimeoutMs;
  const agent = new Agent({ connect: { timeout: opts.connectTimeoutMs }, headersTimeout, bodyTimeout: opts.bodyTimeoutMs });
  try {
    let current = first;
    // Credentials in the URL become Basic auth, sent only to the origin they were given for.
    let authOrigin = current.origin;
    let authorization = basicAuth(current);
    for (let hop = 0; ; hop++) {
      // identity: we never inflate a body, so a compressed one could only fail the zip check.
      const headers: Record<string, string> = { accept: 'application/zip, application/octet-stream, */*', 'accept-encoding': 'identity' };
      if (authorization && current.origin === authOrigin) headers.authorization = authorization;
      const res = await request(withoutCredentials(current), {
        method: 'GET',
        dispatcher: agent,
        headers,
        ...(opts.signal ? { signal: opts.signal } : {}),
      }).catch((err: unknown) => {
        throw networkError(err, current, opts);
      });

      if (REDIRECT_STATUSES.has(res.statusCode)) {
        await res.body.dump().catch(() => undefined);
        const location = headerValue(res.headers.location);
        if (!location) throw new CodedError('MODEL_DOWNLOAD_FAILED', `${redactUrl(current.href)} answered ${res.statusCode} without a Location`, 502, { upstreamStatus: res.statusCode });
        if (hop + 1 > MAX_REDIRECTS) throw new CodedError('MODEL_DOWNLOAD_FAILED', `more than ${MAX_REDIRECTS} redirects from ${redactUrl(first.href)}`, 502, { upstreamStatus: res.statusCode });
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw new CodedError('MODEL_DOWNLOAD_FAILED', `${redactUrl(current.href)} redirected to an invalid URL`, 502, { upstreamStatus: res.statusCode });
        }
        // A server must never be able to point us at local files or unlisted hosts.
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new CodedError('MODEL_URL_FORBIDDEN', `redirect to a ${next.protocol} URL refused`, 403, { url: redactUrl(next.href) });
        }
        checkHostAllowed(next, opts.allowedHosts);
        if (next.username || next.password) {
          authorization = basicAuth(next);
          authOrigin = next.origin;
        }
        opts.logger?.debug({ from: redactUrl(current.href), to: redactUrl(next.href), status: res.statusCode }, 'model download redirected');
        current = next;
        continue;
      }

      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump().catch(() => undefined);
        throw new CodedError('MODEL_DOWNLOAD_FAILED', `${redactUrl(current.href)} answered HTTP ${res.statusCode}`, 502, { upstreamStatus: res.statusCode, url: redactUrl(current.href) });
      }
      const total = parseContentLength(headerValue(res.headers['content-length']));
      if (total !== null && total > opts.maxBytes) {
        res.body.destroy();
        throw tooLarge(total, opts.maxBytes);
      }
      const body = res.body;
      return await saveStream(() => body, total, destFile, opts, current);
    }
  } finally {
    // One agent per download: destroying it closes any socket a failed download left open.
    agent.destroy().catch(() => undefined);
  }
}

/**
 * Streams into `.<name>.<random>.part` beside destFile while counting, hashing and checking
 * the zip signature, then renames. Any failure removes the temp file.
 */
async function saveStream(
  open: () => Readable,
  total: number | null,
  destFile: string,
  opts: DownloadOptions,
  source: URL,
): Promise<DownloadResult> {
  const dir = dirname(destFile);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw storageError(err);
  }
  const tempFile = join(dir, `.${basename(destFile)}.${randomBytes(6).toString('hex')}.part`);
  const hash = createHash('sha256');
  let received = 0;
  let head = Buffer.alloc(0);

  const inspect = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > opts.maxBytes) return callback(tooLarge(received, opts.maxBytes, true));
      if (head.length < 4) {
        head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
        // Fail fast on HTML error pages and the like instead of downloading them whole.
        if (head.length === 4 && !isZipSignature(head)) return callback(notZip(source));
      }
      hash.update(chunk);
      try {
        opts.onProgress?.(received, total);
      } catch {
        // A faulty progress listener must not break the download.
      }
      callback(null, chunk);
    },
  });

  // Open before streaming so that the cleanup below can never run ahead of the file's creation.
  let sink: WriteStream;
  try {
    sink = (await openFile(tempFile, 'wx')).createWriteStream();
  } catch (err) {
    throw storageError(err);
  }
  // pipeline() hands the first error to every stream; only one that starts at the disk is a storage fault.
  let origin: 'source' | 'sink' | undefined;
  sink.once('error', () => {
    origin ??= 'sink';
  });

  try {
    const input = open();
    input.once('error', () => {
      origin ??= 'source';
    });
    inspect.once('error', () => {
      origin ??= 'source';
    });
    if (opts.signal) await pipeline(input, inspect, sink, { signal: opts.signal });
    else await pipeline(input, inspect, sink);
    if (head.length < 4 || !isZipSignature(head)) throw notZip(source);
    await rename(tempFile, destFile);
  } catch (err) {
    await closed(sink);
    await unlink(tempFile).catch(() => undefined);
    if (err instanceof CodedError) throw err;
    if (origin === 'sink' && !opts.signal?.aborted) throw storageError(err);
    throw networkError(err, source, opts);
  }
  return { bytes: received, sha256: hash.digest('hex') };
}

/** Resolves once the stream has released its file descriptor. */
function closed(stream: WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  if (!stream.destroyed) stream.destroy();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

function isZipSignature(head: Buffer): boolean {
  return ZIP_SIGNATURES.some((sig) => head.subarray(0, 4).equals(sig));
}

function notZip(source: URL): CodedError {
  return new CodedError('ARCHIVE_NOT_ZIP', `${redactUrl(source.href)} did not return a zip archive (.mpta files are zips)`, 422, { url: redactUrl(source.href) });
}

function tooLarge(bytes: number, maxBytes: number, streaming = false): CodedError {
  const what = streaming ? `more than ${maxBytes} bytes arrived` : `archive is ${bytes} bytes`;
  return new CodedError('MODEL_TOO_LARGE', `${what}; the limit is ${maxBytes} bytes`, 413, { maxBytes });
}

function storageError(err: unknown): CodedError {
  const code = errCode(err);
  return new CodedError('MODEL_STORAGE_FAILED', `cannot write the model archive: ${errorMessage(err)}`, code === 'ENOSPC' ? 507 : 500, { reason: code }, { cause: err });
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** Maps transport errors (undici, DNS, sockets, aborts) onto the API's codes. */
function networkError(err: unknown, url: URL, opts: DownloadOptions): CodedError {
  if (err instanceof CodedError) return err;
  const where = redactUrl(url.href);
  if (opts.signal?.aborted) {
    const reason = opts.signal.reason as { name?: unknown } | undefined;
    if (reason?.name === 'TimeoutError') {
      const deadline = opts.deadlineMs ? { deadlineMs: opts.deadlineMs } : {};
      return new CodedError('MODEL_DOWNLOAD_TIMEOUT', `download of ${where} ran past its deadline`, 504, { url: where, ...deadline }, { cause: err });
    }
    return new CodedError('MODEL_DOWNLOAD_ABORTED', `download of ${where} was cancelled`, 499, { url: where }, { cause: err });
  }
  const code = errCode(err);
  if (code && TIMEOUT_CODES.has(code)) {
    return new CodedError('MODEL_DOWNLOAD_TIMEOUT', `download of ${where} timed out (${code})`, 504, { url: where, reason: code }, { cause: err });
  }
  return new CodedError('MODEL_DOWNLOAD_FAILED', `download of ${where} failed: ${code ?? errorMessage(err)}`, 502, { url: where, ...(code ? { reason: code } : {}) }, { cause: err });
}

function errCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // AggregateError from happy-eyeballs connects: report the first concrete cause.
  const inner = (err as { errors?: unknown[] }).errors?.[0] ?? (err as { cause?: unknown }).cause;
  return inner && inner !== err ? errCode(inner) : undefined;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseContentLength(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : null;
}

function basicAuth(url: URL): string | undefined {
  if (!url.username && !url.password) return undefined;
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text; // a stray % that is not an escape
    }
  };
  const user = decode(url.username);
  const pass = decode(url.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function withoutCredentials(url: URL): URL {
  if (!url.username && !url.password) return url;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy;
}

function truncate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
