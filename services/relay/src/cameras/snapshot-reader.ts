/**
 * An HTTP snapshot camera: one undici GET every interval. Every camera is treated as
 * hostile: each request has an overall deadline (a server dripping a byte a second is cut
 * like one that never answers), the body is capped while it is read and refused at its
 * first bytes when it is no JPEG, and a frame counts only when it is a complete JPEG
 * (checkJpeg: segments, plausible dimensions, scan data ending in EOI). Each reader has its
 * own connection pool, destroyed when the stream is closed, so sockets cannot pile up.
 */
import { Agent, request } from 'undici';
import type { Logger } from '@detector-worker/shared/logging';
import { CameraReader, type FailureKind, type ReaderOptions } from './camera-reader.js';
import type { CameraSource } from './frame.js';
import { checkJpeg } from './jpeg-check.js';

export interface SnapshotOptions extends ReaderOptions {
  /** Deadline for a whole snapshot: connect, headers and body. */
  timeoutMs: number;
  maxBytes?: number;
}

/** A failed snapshot, with the kind it is counted under. */
export class SnapshotFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** The connection could not be made at all (the reader then knocks on the port while it waits). */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
/** Connected, then dropped: the camera is there but misbehaves, so plain backoff. */
const DROPPED_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** The kind and message of an error from undici or the network. */
export function classifySnapshotError(err: unknown): SnapshotFailure {
  if (err instanceof SnapshotFailure) return err;
  const e = err as { code?: string; message?: string; cause?: { code?: string }; errors?: Array<{ code?: string }> } | undefined;
  const code = e?.code ?? e?.cause?.code ?? e?.errors?.[0]?.code;
  const message = e?.message || code || String(err);
  if (code && TIMEOUT_CODES.has(code)) return new SnapshotFailure('timeout', `snapshot timed out (${code})`);
  if (code && CONNECT_CODES.has(code)) return new SnapshotFailure('connect', `snapshot connection failed: ${message}`);
  if (code && DROPPED_CODES.has(code)) return new SnapshotFailure('error', `snapshot connection dropped: ${message}`);
  return new SnapshotFailure('error', `snapshot failed: ${message}`);
}

export class SnapshotReader extends CameraReader {
  private timer: NodeJS.Timeout | undefined;
  private session: AbortController | undefined;
  private agent: Agent | undefined;
  protected override readonly detectsRepeats = false;

  constructor(source: CameraSource, private readonly snapshot: SnapshotOptions, logger: Logger, rate: number) {
    super(source, snapshot, logger, rate);
  }

  /** The fastest interval any user asked for (rate is the max over users). */
  private get intervalMs(): number {
    return Math.max(50, Math.round(1000 / this.rate));
  }

  private get maxBytes(): number {
    return this.snapshot.maxBytes ?? 16 * 1024 * 1024;
  }

  protected open(): void {
    const session = new AbortController();
    this.session = session;
    // A keep-alive camera is polled over one socket; two at most while one is being torn down.
    const agent = new Agent({ connections: 2, pipelining: 1, keepAliveTimeout: Math.max(4000, this.intervalMs * 2), connect: { timeout: this.snapshot.timeoutMs } });
    this.agent = agent;
    const poll = async (): Promise<void> => {
      if (session.signal.aborted) return;
      const started = Date.now();
      let snapshot: { jpeg: Buffer; width: number; height: number };
      try {
        snapshot = await this.fetchSnapshot(agent, session.signal);
      } catch (err) {
        if (session.signal.aborted) return;
        const failure = classifySnapshotError(err);
        this.ended(failure.message, failure.kind);
        return;
      }
      if (session.signal.aborted) return;
      this.deliver(snapshot.jpeg, snapshot);
      this.timer = setTimeout(() => void poll(), Math.max(0, this.intervalMs - (Date.now() - started)));
      this.timer.unref();
    };
    void poll();
  }

  /** One snapshot within the deadline, checked; throws a SnapshotFailure. */
  private async fetchSnapshot(agent: Agent, session: AbortSignal): Promise<{ jpeg: Buffer; width: number; height: number }> {
    const { timeoutMs } = this.snapshot;
    const attempt = new AbortController();
    const cancel = (): void => attempt.abort(new SnapshotFailure('error', 'camera closed'));
    session.addEventListener('abort', cancel, { once: true });
    const deadline = setTimeout(() => attempt.abort(new SnapshotFailure('timeout', `no complete snapshot within ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await request(this.source.url, { dispatcher: agent, signal: attempt.signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      let complete = false;
      try {
        if (res.statusCode !== 200) throw new SnapshotFailure('http_status', `snapshot answered HTTP ${res.statusCode}`);
        const max = this.maxBytes;
        const declared = Number(res.headers['content-length']);
        if (declared > max) throw new SnapshotFailure('too_large', `snapshot of ${declared} bytes is over the ${max} byte limit`);
        const body = await readSnapshotBody(res.body, max);
        complete = true;
        const check = checkJpeg(body);
        if (!check.ok) throw new SnapshotFailure('invalid_jpeg', `snapshot is not a complete JPEG: ${check.reason}`);
        // Bytes after EOI are dropped (copied, so the padding is not kept alive with the frame).
        return { jpeg: check.end < body.length ? Buffer.from(body.subarray(0, check.end)) : body, width: check.width, height: check.height };
      } finally {
        // Never drain what is left: a hostile body could be endless or slow. Destroying an
        // undici body emits an AbortError: without a listener that would crash the process.
        if (!complete) res.body.on('error', () => undefined).destroy();
      }
    } catch (err) {
      const reason: unknown = attempt.signal.reason;
      if (attempt.signal.aborted && reason instanceof SnapshotFailure) throw reason;
      throw classifySnapshotError(err);
    } finally {
      clearTimeout(deadline);
      session.removeEventListener('abort', cancel);
    }
  }

  protected close(): void {
    this.session?.abort();
    this.session = undefined;
    clearTimeout(this.timer);
    const agent = this.agent;
    this.agent = undefined;
    void agent?.destroy().catch(() => undefined);
  }
}

/** The body, capped at `max` bytes and refused at its first two bytes unless they open a JPEG. */
export async function readSnapshotBody(body: AsyncIterable<Buffer | Uint8Array>, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    const before = size;
    size += buf.length;
    if (size > max) throw new SnapshotFailure('too_large', `snapshot is over the ${max} byte limit`);
    chunks.push(buf);
    if (before < 2 && size >= 2) {
      const head = chunks.length === 1 ? buf : Buffer.concat(chunks);
      if (head[0] !== 0xff || head[1] !== 0xd8) throw new SnapshotFailure('not_jpeg', 'snapshot is not a JPEG (no FF D8 at the start)');
    }
  }
  if (size < 2) throw new SnapshotFailure('not_jpeg', `snapshot is not a JPEG (${size} bytes)`);
  return Buffer.concat(chunks, size);
}
