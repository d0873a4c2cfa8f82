/** A stand-in for the infer service: answers the shared contract (contract/infer-api.ts) with a canned detection and records what it was asked. */
import { createServer, type Server } from 'node:http';
import type { InferAnswer } from '@detector-worker/shared/contract/infer-api';

export interface StubRequest {
  modelId: string;
  authorization: string | undefined;
  contentType: string | undefined;
  query: Record<string, string>;
  bytes: number;
  at: number;
}

export interface StubInfer {
  url: string;
  requests: StubRequest[];
  /** Milliseconds to wait before answering. */
  delayMs: number;
  /** Status to answer instead of 200 (e.g. 429, 503). */
  failWith: number | undefined;
  detection: InferAnswer['detection'];
  /** The pipeline's `tracking` settings the stub reports; `{ enabled: false }` for one event per frame. */
  tracking: InferAnswer['tracking'];
  close(): Promise<void>;
}

export async function startStubInfer(): Promise<StubInfer> {
  const stub: StubInfer = { url: '', requests: [], delayMs: 0, failWith: undefined, detection: { class: 'car', confidence: 0.9, carBrand: 'Honda' }, tracking: undefined, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/v1\/models\/([^/]+)\/infer$/.exec(url.pathname);
    let bytes = 0;
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => {
      if (!m || req.method !== 'POST') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"NOT_FOUND","message":"no"}');
        return;
      }
      stub.requests.push({ modelId: decodeURIComponent(m[1]!), authorization: req.headers.authorization, contentType: req.headers['content-type'], query: Object.fromEntries(url.searchParams), bytes, at: Date.now() });
      setTimeout(() => {
        if (stub.failWith) {
          res.writeHead(stub.failWith, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify({ code: 'STUB_FAILURE', message: 'stub failure' }));
          return;
        }
        // The detect stage carries boxes only; a full run carries the CMS detection.
        const detectStage = url.searchParams.get('stage') === 'detect';
        const detection = detectStage ? null : stub.detection;
        const answer: InferAnswer = {
          modelId: decodeURIComponent(m[1]!),
          detection,
          ...(stub.tracking !== undefined ? { tracking: stub.tracking } : {}),
          result: stub.detection ? { class: 'car', confidence: 0.9, bbox: [10, 10, 50, 50], detections: [{ class: 'car', confidence: 0.9, bbox: [10, 10, 50, 50], id: null }] } : null,
          actions: [],
          timings: { decode: 0, modelWait: 0, preprocess: 0, inference: 0, nodes: {}, actions: 0, total: 0 },
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      }, stub.delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stub.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  stub.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return stub;
}
