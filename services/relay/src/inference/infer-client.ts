/**
 * POSTs one frame to the infer service (its HTTP contract: body = JPEG, context as query
 * parameters) and classifies the outcome so the caller can back off on refusals, timeouts,
 * 5xx and 429 (honouring Retry-After).
 */
import { Agent, request } from 'undici';

export interface InferRequest {
  modelId: string;
  modelUrl: string;
  subscriptionIdentifier: string;
  displayId: string;
  sessionId: string | null;
  requestId: string;
  capturedAt: string;
}

export interface InferAnswer {
  detection: Record<string, unknown> | null;
  result: unknown;
  actions?: unknown[];
  timings?: Record<string, unknown>;
}

export type InferOutcome = { ok: true; answer: InferAnswer; latencyMs: number } | { ok: false; code: string; status: number; message: string; retryAfterMs?: number; latencyMs: number };

export class InferClient {
  private readonly agent: Agent;

  constructor(
    private readonly baseUrl: string,
    private readonly token: string | undefined,
    private readonly timeoutMs: number,
  ) {
    this.agent = new Agent({ connectTimeout: Math.min(5000, timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 30_000 });
  }

  async infer(jpeg: Buffer, r: InferRequest): Promise<InferOutcome> {
    const params = new URLSearchParams({ modelUrl: r.modelUrl, subscriptionIdentifier: r.subscriptionIdentifier, displayId: r.displayId, requestId: r.requestId, capturedAt: r.capturedAt });
    if (r.sessionId !== null) params.set('sessionId', r.sessionId);
    const url = `${this.baseUrl.replace(/\/$/, '')}/v1/models/${encodeURIComponent(r.modelId)}/infer?${params}`;
    const started = performance.now();
    try {
      const res = await request(url, {
        method: 'POST',
        body: jpeg,
        headers: { 'content-type': 'image/jpeg', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await res.body.text();
      const latencyMs = performance.now() - started;
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (res.statusCode === 200 && body && typeof body === 'object') return { ok: true, answer: body as InferAnswer, latencyMs };
      const err = (body ?? {}) as { code?: string; message?: string };
      const retry = Number(res.headers['retry-after']);
      return {
        ok: false,
        status: res.statusCode,
        code: err.code ?? `HTTP_${res.statusCode}`,
        message: err.message ?? text.slice(0, 200),
        ...(Number.isFinite(retry) && retry >= 0 ? { retryAfterMs: retry * 1000 } : {}),
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
