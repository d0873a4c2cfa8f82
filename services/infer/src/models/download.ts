/**
 * Fetches an `.mpta` archive from a URL the caller does not control (CMS subscriptions,
 * API requests) onto local disk: the transport. Everything about the answer is hostile: the
 * URL policy (model-url.ts) is applied on every redirect hop, the size is capped before and
 * while streaming, every phase has a timeout and the whole download has a deadline (a server
 * dripping a byte a second never trips an idle timeout), the body is never decompressed (a
 * gzip bomb stays a few bytes that fail the zip check), and archive-file.ts writes the bytes
 * so that a reader never sees a partial archive.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { redactUrl, type Logger } from '@detector-worker/shared/logging';
import { errCode, saveStream, tooLarge, type SavedArchive } from './archive-file.js';
import { basicAuth, checkHostAllowed, parseArchiveUrl, withoutCredentials } from './model-url.js';
import { coded } from '../error-codes.js';


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

export type DownloadResult = SavedArchive;

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);


export async function downloadArchive(url: string, destFile: string, opts: DownloadOptions): Promise<DownloadResult> {
  const target = parseArchiveUrl(url);
  if (target.protocol === 'file:') {
    if (!opts.allowFileUrls) throw coded('MODEL_URL_FORBIDDEN', 'file:// model URLs are disabled on this service', { url: redactUrl(url) });
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






async function saveFromFile(url: URL, destFile: string, opts: DownloadOptions): Promise<DownloadResult> {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (err) {
    throw coded('MODEL_URL_INVALID', `file URL cannot be used: ${errorMessage(err)}`, { url: redactUrl(url.href) });
  }
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw coded('MODEL_DOWNLOAD_FAILED', `${redactUrl(url.href)} is not a regular file`);
    size = info.size;
  } catch (err) {
    if (err instanceof CodedError) throw err;
    throw coded('MODEL_DOWNLOAD_FAILED', `cannot read ${redactUrl(url.href)}: ${errorMessage(err)}`, { reason: errCode(err) }, { cause: err });
  }
  if (size > opts.maxBytes) throw tooLarge(size, opts.maxBytes);
  return saveStream(() => createReadStream(path), size, destFile, { ...opts, sourceError: (err) => networkError(err, url, opts) }, url);
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
        if (!location) throw coded('MODEL_DOWNLOAD_FAILED', `${redactUrl(current.href)} answered ${res.statusCode} without a Location`, { upstreamStatus: res.statusCode });
        if (hop + 1 > MAX_REDIRECTS) throw coded('MODEL_DOWNLOAD_FAILED', `more than ${MAX_REDIRECTS} redirects from ${redactUrl(first.href)}`, { upstreamStatus: res.statusCode });
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw coded('MODEL_DOWNLOAD_FAILED', `${redactUrl(current.href)} redirected to an invalid URL`, { upstreamStatus: res.statusCode });
        }
        // A server must never be able to point us at local files or unlisted hosts.
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw coded('MODEL_URL_FORBIDDEN', `redirect to a ${next.protocol} URL refused`, { url: redactUrl(next.href) });
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
        throw coded('MODEL_DOWNLOAD_FAILED', `${redactUrl(current.href)} answered HTTP ${res.statusCode}`, { upstreamStatus: res.statusCode, url: redactUrl(current.href) });
      }
      const total = parseContentLength(headerValue(res.headers['content-length']));
      if (total !== null && total > opts.maxBytes) {
        res.body.destroy();
        throw tooLarge(total, opts.maxBytes);
      }
      const body = res.body;
      return await saveStream(() => body, total, destFile, { ...opts, sourceError: (err) => networkError(err, current, opts) }, current);
    }
  } finally {
    // One agent per download: destroying it closes any socket a failed download left open.
    agent.destroy().catch(() => undefined);
  }
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
      return coded('MODEL_DOWNLOAD_TIMEOUT', `download of ${where} ran past its deadline`, { url: where, ...deadline }, { cause: err });
    }
    return coded('MODEL_DOWNLOAD_ABORTED', `download of ${where} was cancelled`, { url: where }, { cause: err });
  }
  const code = errCode(err);
  if (code && TIMEOUT_CODES.has(code)) {
    return coded('MODEL_DOWNLOAD_TIMEOUT', `download of ${where} timed out (${code})`, { url: where, reason: code }, { cause: err });
  }
  return coded('MODEL_DOWNLOAD_FAILED', `download of ${where} failed: ${code ?? errorMessage(err)}`, { url: where, ...(code ? { reason: code } : {}) }, { cause: err });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseContentLength(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : null;
}
