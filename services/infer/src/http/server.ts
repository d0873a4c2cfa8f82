/**
 * The infer HTTP API (fastify). Every route validates its input with a TypeBox schema;
 * the same schemas describe the API in OpenAPI at /openapi.json. Clients are hostile: headers
 * and the request body must arrive within their timeouts, and an infer request is refused
 * (429, 413, 401) before its body is read.
 */
import type { Socket } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import { CONTEXT_HEADERS, ErrorReplySchema as ErrorReply, IMAGE_CONTENT_TYPES, InferAnswerSchema, RAW_RGB_CONTENT_TYPE, isRawRgbType, InferContextJson, InferQuery, parseFocus, type InferAnswer as WireAnswer, type InferContextField } from '@detector-worker/shared/contract/infer-api';
import { CodedError } from '@detector-worker/shared/errors';
import type { Admission, InferService } from '../service.js';
import { clientErrorResponse, toCodedError, type ErrorContext } from './errors.js';
import { declaredLength, hasBody, lingerOnClose, tokenDigest, tokenMatches } from './guards.js';
import { rawImage, rawImageSize } from './raw-body.js';
import { InferMetrics } from './metrics.js';
import type { RunOptions } from '../pipeline/executor.js';
import { checkRawLength, type RawRgb } from '../images/frame-image.js';
import type { RequestContext } from '../pipeline/types.js';
import { coded } from '../error-codes.js';

const ModelParams = Type.Object({ modelId: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$' }) });
const LoadBody = Type.Object({ modelUrl: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false });

const INFER_ROUTE = '/v1/models/:modelId/infer';
/** Body types read whole: encoded images, and raw RGB pixels with their size in the query. */
const IMAGE_TYPES: string[] = [...IMAGE_CONTENT_TYPES, RAW_RGB_CONTENT_TYPE];
/** Room for the multipart boundaries, part headers and the context field around the image. */
const MULTIPART_OVERHEAD = 5 * 64 * 1024;

export interface InferServerOptions {
  service: InferService;
  /** Bearer token required on every route but the probes, when set. */
  token?: string | undefined;
  bodyLimit: number;
  /** The request headers must arrive within this (slowloris); default 10 s. */
  headersTimeoutMs?: number;
  /** The whole request must arrive within this; the answer is not bounded by it. Default 60 s. */
  requestTimeoutMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The infer route's slot in the in-flight count, held until the response closes. */
    admission?: Admission;
  }
}

function contextFrom(query: Record<string, string | undefined>, headers: FastifyRequest['headers'], extra: Record<string, unknown> = {}): { modelUrl?: string; request: RequestContext; run: RunOptions } {
  const pick = (k: InferContextField): string | undefined => {
    const fromExtra = extra[k];
    if (typeof fromExtra === 'string' && fromExtra) return fromExtra;
    const q = query[k];
    if (q) return q;
    const h = headers[CONTEXT_HEADERS[k]];
    const v = Array.isArray(h) ? h[0] : h;
    if (v && v.length > 4096) throw coded('BAD_REQUEST', `header ${CONTEXT_HEADERS[k]} is too long`);
    return v || undefined;
  };
  const request: RequestContext = {};
  const sub = pick('subscriptionIdentifier');
  const display = pick('displayId');
  const session = pick('sessionId');
  const requestId = pick('requestId');
  const capturedAt = pick('capturedAt');
  if (sub) request.subscriptionIdentifier = sub;
  if (display) request.displayId = display;
  if (session) request.sessionId = session;
  if (requestId) request.requestId = requestId;
  if (capturedAt) {
    if (Number.isNaN(Date.parse(capturedAt))) throw coded('BAD_REQUEST', 'capturedAt must be an ISO-8601 time');
    request.capturedAt = capturedAt;
  }
  const run: RunOptions = {};
  const stage = pick('stage');
  if (stage !== undefined) {
    if (stage !== 'detect' && stage !== 'full') throw coded('BAD_REQUEST', 'stage must be "detect" or "full"');
    run.stage = stage;
  }
  const focus = pick('focus');
  if (focus !== undefined) {
    const box = parseFocus(focus);
    if (!box) throw coded('BAD_REQUEST', 'focus must be x1,y1,x2,y2 with x2 > x1 and y2 > y1');
    run.focus = box;
  }
  const modelUrl = pick('modelUrl');
  return modelUrl ? { modelUrl, request, run } : { request, run };
}

function sendError(reply: FastifyReply, err: CodedError): FastifyReply {
  const retry = err.details?.retryAfterSeconds;
  if (typeof retry === 'number') reply.header('retry-after', String(retry));
  // Refused before its body was read: close rather than drain a body nobody wants.
  if (hasBody(reply.request.headers) && !reply.request.raw.complete) {
    reply.header('connection', 'close');
    lingerOnClose(reply.request.raw.socket);
  }
  return reply.code(err.statusCode).send(err.toJSON());
}

export async function buildInferServer(options: InferServerOptions) {
  const { service } = options;
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = options.requestTimeoutMs ?? 60_000;
  const errorContext: ErrorContext = { bodyLimit: options.bodyLimit, imageTypes: IMAGE_TYPES };
  const app = Fastify({
    loggerInstance: service.logger.child({ component: 'http' }),
    bodyLimit: options.bodyLimit,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    // node:http checks both timeouts on an interval (30 s by default), which would stretch a short
    // bound; both count only while the request arrives, so a long model load is never cut off.
    http: { headersTimeout, requestTimeout, connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))) },
    requestTimeout,
    clientErrorHandler(err: Error & { code?: string }, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const pending = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      const answer = clientErrorResponse(err, errorContext);
      service.logger.info({ component: 'http', reason: err.code ?? err.message, remote: socket.remoteAddress }, 'client error; connection closed');
      if (socket.writable && !pending?.headersSent) socket.end(answer, () => socket.destroy());
      else socket.destroy();
      // A peer that never reads must not keep the half-closed socket.
      setTimeout(() => socket.destroy(), 1000).unref();
    },
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'detector-worker infer API', version: '1', description: 'Runs .mpta pipelines on images. The body of an infer request is the image itself.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(multipart, { limits: { fileSize: options.bodyLimit, files: 1, fields: 4, fieldSize: 64 * 1024 } });

  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: unknown, request, reply) => {
    const coded = toCodedError(err, errorContext);
    if (coded.code === 'INTERNAL') request.log.error({ err }, 'unexpected error');
    else if (coded.statusCode >= 500) request.log.error({ code: coded.code, reason: coded.message }, 'request failed');
    else request.log.info({ code: coded.code, reason: coded.message, url: request.routeOptions.url }, 'request refused');
    return sendError(reply, coded);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, coded('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));

  if (options.token) {
    const expected = tokenDigest(`Bearer ${options.token}`);
    app.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?')[0];
      if (path === '/healthz' || path === '/readyz' || path === '/metrics') return;
      if (!tokenMatches(request.headers.authorization, expected)) return sendError(reply, coded('UNAUTHORIZED', 'a valid bearer token is required'));
    });
  }

  const metrics = new InferMetrics(service);
  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url !== INFER_ROUTE) return;
    const model = (request.params as { modelId?: string }).modelId ?? 'unknown';
    metrics.observeRequest(model, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { description: 'Prometheus metrics' } }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/healthz', { schema: { description: 'alive' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { description: 'worker pool started (never depends on a particular model)' } }, async (_req, reply) => {
    if (!service.ready) return reply.code(503).send({ status: 'starting' });
    return { status: 'ready', workers: service.pool.workers, models: service.registry.loadedCount };
  });

  app.post<{ Params: { modelId: string }; Querystring: Record<string, string | undefined> }>(
    INFER_ROUTE,
    {
      // Refuse before the body is read: an oversized declaration or a full queue costs no upload.
      onRequest: async (request, reply) => {
        const declared = declaredLength(request.headers);
        const allowance = options.bodyLimit + (request.headers['content-type']?.startsWith('multipart/') ? MULTIPART_OVERHEAD : 0);
        if (declared !== undefined && declared > allowance) return sendError(reply, coded('BODY_TOO_LARGE', `request body is over ${options.bodyLimit} bytes`));
        // A raw body's size and length are known from the headers: a wrong one costs no upload.
        if (declared && isRawRgbType(request.headers['content-type'])) {
          try {
            checkRawLength(declared, rawImageSize(request.query as Record<string, unknown>, service.config.maxImagePixels));
          } catch (err) {
            return sendError(reply, toCodedError(err, errorContext));
          }
        }
        let admission: Admission;
        try {
          admission = service.admit();
        } catch (err) {
          return sendError(reply, toCodedError(err, errorContext));
        }
        request.admission = admission;
        // 'close' comes however the exchange ends: answered, failed, or the client gone.
        reply.raw.once('close', () => admission.release());
      },
      // Per-request logs at this rate would drown the rest; errors are still logged by the error handler.
      logLevel: 'warn',
      schema: {
        description:
          'Run the pipeline on one image. Body: the image (image/jpeg, image/png, image/webp), raw interleaved RGB pixels (application/x-rgb24, width*height*3 bytes, with the `width` and `height` query parameters), or multipart/form-data with an `image` file and an optional `context` JSON part. Context also as query parameters or X-* headers.',
        params: ModelParams,
        querystring: InferQuery,
        response: { 200: InferAnswerSchema, 400: ErrorReply, 404: ErrorReply, 413: ErrorReply, 415: ErrorReply, 422: ErrorReply, 429: ErrorReply, 502: ErrorReply, 504: ErrorReply },
      },
    },
    async (request) => {
      let image: Buffer | RawRgb;
      let extra: Record<string, unknown> = {};
      if (request.isMultipart()) {
        const parts = await readMultipart(request, errorContext);
        image = parts.image;
        extra = parts.context;
      } else {
        if (request.body === undefined || request.body === null) throw coded('IMAGE_EMPTY', 'request body is empty: send the image bytes');
        if (!Buffer.isBuffer(request.body)) throw coded('UNSUPPORTED_MEDIA_TYPE', `send the image as ${IMAGE_TYPES.join(', ')} or multipart/form-data`);
        image = isRawRgbType(request.headers['content-type']) ? rawImage(request.body, request.query, service.config.maxImagePixels) : request.body;
      }
      const { modelUrl, request: ctx, run } = contextFrom(request.query, request.headers, extra);
      const answer = await service.infer(request.params.modelId, image, modelUrl, ctx, request.admission, run);
      metrics.observeActions(answer.actions);
      // The answer is checked against the shared contract at compile time.
      return answer satisfies WireAnswer;
    },
  );

  app.put<{ Params: { modelId: string }; Body: { modelUrl: string } }>(
    '/v1/models/:modelId',
    { schema: { description: 'Load and warm a pipeline (idempotent; a new modelUrl reloads).', params: ModelParams, body: LoadBody } },
    async (request) => service.registry.load(request.params.modelId, request.body.modelUrl),
  );
  app.get('/v1/models', { schema: { description: 'Loaded, loading and failed pipelines, and load counters.' } }, async () => ({ models: service.registry.list(), stats: service.registry.stats }));
  app.get<{ Params: { modelId: string } }>('/v1/models/:modelId', { schema: { params: ModelParams } }, async (request) => {
    const info = service.registry.info(request.params.modelId);
    if (!info) throw coded('MODEL_NOT_FOUND', `model ${request.params.modelId} is not loaded`);
    return info;
  });
  app.delete<{ Params: { modelId: string } }>('/v1/models/:modelId', { schema: { params: ModelParams } }, async (request) => {
    if (!service.registry.evict(request.params.modelId)) throw coded('MODEL_NOT_FOUND', `model ${request.params.modelId} is not loaded`);
    return { modelId: request.params.modelId, state: 'evicted' };
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}

async function readMultipart(request: FastifyRequest, ctx: ErrorContext): Promise<{ image: Buffer; context: Record<string, unknown> }> {
  try {
    return await readParts(request);
  } catch (err) {
    // The parser's own errors (a malformed body) carry no code: they are the client's fault.
    throw toCodedError(err, ctx, { unknown: 'client' });
  }
}

async function readParts(request: FastifyRequest): Promise<{ image: Buffer; context: Record<string, unknown> }> {
  let image: Buffer | undefined;
  let context: Record<string, unknown> = {};
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'image') {
        part.file.resume();
        throw coded('BAD_REQUEST', `unexpected file part "${part.fieldname}": send the image as "image"`);
      }
      image = await part.toBuffer();
    } else if (part.fieldname === 'context') {
      try {
        context = JSON.parse(String(part.value)) as Record<string, unknown>;
      } catch {
        throw coded('BAD_REQUEST', 'the context part must be JSON');
      }
      if (typeof context !== 'object' || context === null || Array.isArray(context)) throw coded('BAD_REQUEST', 'the context part must be a JSON object');
      for (const [k, v] of Object.entries(context)) {
        if (!(k in InferContextJson.properties)) throw coded('BAD_REQUEST', `unknown context field "${k}"`);
        if (typeof v !== 'string' || v.length > 4096) throw coded('BAD_REQUEST', `context field "${k}" must be a string`);
      }
    }
  }
  if (!image) throw coded('IMAGE_EMPTY', 'multipart request has no "image" file part');
  return { image, context };
}
