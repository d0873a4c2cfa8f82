/**
 * POSTs one frame to the infer service (the shared contract: body = JPEG, or raw RGB with its
 * size as `width` / `height`; context as query parameters; answer checked against InferAnswerSchema) and classifies the outcome so the
 * caller can back off on refusals, timeouts, 5xx and 429 (honouring Retry-After).
 */
import { Agent, request } from 'undici';
import { RAW_RGB_CONTENT_TYPE, checkInferAnswer, contextQuery, formatFocus, inferPath, type InferAnswer, type InferStage, type RawImageSize } from '@detector-worker/shared/contract/infer-api';
import { readBodyCapped } from '../net/capped-body.js';

export type { InferAnswer } from '@detector-worker/shared/contract/infer-api';

/** Infer answers are small JSON; anything near this is broken. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export interface InferRequest {
  modelId: string;
  modelUrl: string;
  subscriptionIdentifier: string;
  displayId: string;
  sessionId: string | null;
  requestId: string;
  capturedAt: string;
  /** `detect`: the root detector only (tracked cameras, per frame); default: the whole pipeline. */
  stage?: InferStage;
  /** The tracked vehicle a full run is for, in the pixels of the image sent. */
  focus?: readonly [number, number, number, number];
  /** The body is raw interleaved RGB of this size (detect frames, DETECT_FRAMES=raw); absent: a JPEG. */
  raw?: RawImageSize;
}

export type InferOutcome = { ok: true; answer: InferAnswer; latencyMs: number } | { ok: false; code: string; status: number; message: string; retryAfterMs?: number; latencyMs: number };

/** Longest Retry-After honoured: a confused server cannot park a camera for hours. */
export const MAX_RETRY_AFTER_MS = 300_000;

/** Retry-After as delay-seconds or an HTTP date, in milliseconds from `now`, capped. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text || !text.trim()) return undefined;
  const trimmed = text.trim();
  const ms = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class InferClient {
  private readonly agent: Agent;

  constructor(
    private readonly baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs: number,
  ) {
    this.agent = new Agent({ connectTimeout: Math.min(5000, timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 30_000 });
  }

  async infer(image: Buffer, r: InferRequest): Promise<InferOutcome> {
    const params = contextQuery({
      modelUrl: r.modelUrl,
      subscriptionIdentifier: r.subscriptionIdentifier,
      displayId: r.displayId,
      requestId: r.requestId,
      capturedAt: r.capturedAt,
      ...(r.sessionId !== null ? { sessionId: r.sessionId } : {}),
      ...(r.stage ? { stage: r.stage } : {}),
      ...(r.focus ? { focus: formatFocus(r.focus) } : {}),
    });
    if (r.raw) {
      params.set('width', String(r.raw.width));
      params.set('height', String(r.raw.height));
    }
    const url = `${this.baseUrl.replace(/\/$/, '')}${inferPath(r.modelId)}?${params}`;
    const started = performance.now();
    try {
      const res = await request(url, {
        method: 'POST',
        body: image,
        headers: { 'content-type': r.raw ? RAW_RGB_CONTENT_TYPE : 'image/jpeg', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const raw = await readBodyCapped(res.body, MAX_ANSWER_BYTES);
      if (!raw) return { ok: false, status: res.statusCode, code: 'INFER_BAD_ANSWER', message: `infer answer over ${MAX_ANSWER_BYTES} bytes`, latencyMs: performance.now() - started };
      const text = raw.toString('utf8');
      const latencyMs = performance.now() - started;
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (res.statusCode === 200) {
        const checked = checkInferAnswer(body);
        if (checked.ok) return { ok: true, answer: checked.answer, latencyMs };
        return { ok: false, status: 200, code: 'INFER_BAD_ANSWER', message: `infer answered 200 with an answer outside the contract: ${checked.reason}`.slice(0, 500), latencyMs };
      }
      const err = isPlainObject(body) ? (body as { code?: unknown; message?: unknown }) : {};
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      return {
        ok: false,
        status: res.statusCode,
        code: typeof err.code === 'string' ? err.code.slice(0, 64) : `HTTP_${res.statusCode}`,
        message: typeof err.message === 'string' ? err.message.slice(0, 500) : text.slice(0, 200),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        latencyMs,
      };
    } catch (e) {
      const err = e as { name?: string; code?: string; message?: string };
      const timeout = err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT';
      return { ok: false, status: 0, code: timeout ? 'INFER_TIMEOUT' : (err.code ?? 'INFER_UNREACHABLE'), message: err.message ?? String(e), latencyMs: performance.now() - started };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
