/**
 * The relay <-> infer contract, in one place: what a caller sends with a frame and what
 * infer answers. Infer's route schema and OpenAPI, the relay's client (which validates every
 * answer with it) and the test stub all use these schemas.
 *
 * Vocabulary: infer speaks pipelines (nodes, detections, branch results, actions). The CMS
 * vocabulary (`imageDetection`, `carBrand`, `bodyType`, sessions) belongs to the relay <-> CMS
 * protocol in ../protocol/messages.ts. The one bridge is `detection`: the flat object a
 * pipeline's `cmsDetection` mapping builds, which the relay forwards as
 * `imageDetection.data.detection` without knowing its keys.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { TrackingSchema } from '../pipeline/schema.js';

/** Per-request context; as query parameters, X-* headers (CONTEXT_HEADERS) or a multipart `context` JSON part. */
export const InferContextFields = {
  modelUrl: Type.Optional(Type.String({ maxLength: 4096, description: 'archive URL; needed only when the model is not loaded yet' })),
  subscriptionIdentifier: Type.Optional(Type.String({ maxLength: 512, description: 'camera_id in templates (displayId;cameraId)' })),
  displayId: Type.Optional(Type.String({ maxLength: 256 })),
  sessionId: Type.Optional(Type.String({ maxLength: 256 })),
  requestId: Type.Optional(Type.String({ maxLength: 256, description: 'idempotency key: a retried request creates no second row or session' })),
  capturedAt: Type.Optional(Type.String({ maxLength: 64, description: 'ISO-8601 capture time of the frame' })),
  stage: Type.Optional(Type.String({ maxLength: 16, description: '`full` (default): the whole pipeline; `detect`: the root detector only, no branches, actions or initial record' })),
  focus: Type.Optional(Type.String({ maxLength: 128, description: 'x1,y1,x2,y2 in image pixels: the tracked vehicle a full run is for; branches crop it, actions run for it' })),
};

/**
 * The size of a raw body (RAW_RGB_CONTENT_TYPE), as query parameters only: it describes the
 * body, not the request's context. Decimal integers; strings here so that infer, not the schema,
 * picks the error code (a huge size is IMAGE_TOO_LARGE, like a JPEG header claiming one).
 */
export const RawImageQueryFields = {
  width: Type.Optional(Type.String({ description: 'pixels per row of an application/x-rgb24 body (required with it, ignored otherwise)' })),
  height: Type.Optional(Type.String({ description: 'rows of an application/x-rgb24 body (required with it, ignored otherwise)' })),
};

export const InferQuery = Type.Object({ ...InferContextFields, ...RawImageQueryFields });
/** The multipart `context` part: the same fields, nothing else. */
export const InferContextJson = Type.Object(InferContextFields, { additionalProperties: false });
/** The context alone (the raw body's size is not context). */
export type InferContext = Static<typeof InferContextJson>;
export type InferContextField = keyof typeof InferContextFields;

/** Query parameter -> the header carrying the same value. */
export const CONTEXT_HEADERS: Readonly<Record<InferContextField, string>> = {
  modelUrl: 'x-model-url',
  subscriptionIdentifier: 'x-subscription-identifier',
  displayId: 'x-display-id',
  sessionId: 'x-session-id',
  requestId: 'x-request-id',
  capturedAt: 'x-captured-at',
  stage: 'x-stage',
  focus: 'x-focus',
};

export type InferStage = 'detect' | 'full';

/** `x1,y1,x2,y2` with x2 > x1 and y2 > y1, or undefined. */
export function parseFocus(text: string): [number, number, number, number] | undefined {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== 4 || parts.some((p) => !/^-?\d+(\.\d+)?$/.test(p))) return undefined;
  const [x1, y1, x2, y2] = parts.map(Number) as [number, number, number, number];
  return x2 > x1 && y2 > y1 ? [x1, y1, x2, y2] : undefined;
}

export function formatFocus(box: readonly [number, number, number, number]): string {
  return box.map((v) => Math.round(v)).join(',');
}

/** Image types the infer route takes as a raw body. */
export const IMAGE_CONTENT_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'] as const;

/**
 * Decoded pixels as the body: interleaved RGB, one byte per channel, rows top to bottom with no
 * padding, `width * height * 3` bytes; the size as the `width` / `height` query parameters. Infer
 * decodes nothing (the relay's detect frames, already shrunk to the detector's input: a decode
 * there is most of a detect request's preprocessing). About 14x the bytes of a JPEG.
 */
export const RAW_RGB_CONTENT_TYPE = 'application/x-rgb24';

/** The size of a raw RGB body. */
export interface RawImageSize {
  width: number;
  height: number;
}

/** Whether a Content-Type header names a raw RGB body (parameters and case ignored). */
export function isRawRgbType(contentType: string | undefined): boolean {
  return contentType?.split(';', 1)[0]!.trim().toLowerCase() === RAW_RGB_CONTENT_TYPE;
}

/** What the CMS may receive in `detection`: one level, scalar values only. */
export const FlatValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
export const FlatDetectionSchema = Type.Record(Type.String(), FlatValue);

export const ActionOutcomeSchema = Type.Object({
  node: Type.String({ description: 'modelId of the node whose action this is' }),
  type: Type.String({ description: 'redis_save_image, redis_publish, postgresql_update_combined or initial_record' }),
  status: Type.Union([Type.Literal('ok'), Type.Literal('skipped'), Type.Literal('failed')]),
  reason: Type.Optional(Type.String()),
  target: Type.Optional(Type.String({ description: 'the Redis key, channel or table written' })),
  durationMs: Type.Optional(Type.Number()),
});

const NodeTimingsSchema = Type.Object({ preprocess: Type.Number(), inference: Type.Number() });

export const InferTimingsSchema = Type.Object({
  decode: Type.Number({ description: 'reading and checking the image header, ms' }),
  modelWait: Type.Number({ description: 'waiting for the pipeline to load (0 when loaded), ms' }),
  preprocess: Type.Number({ description: 'fitting and tensor building over all nodes, ms' }),
  inference: Type.Number({ description: 'session.run and decoding over all nodes, ms' }),
  nodes: Type.Record(Type.String(), NodeTimingsSchema),
  actions: Type.Number(),
  total: Type.Number(),
});

export const InferAnswerSchema = Type.Object({
  modelId: Type.String(),
  detection: Type.Union([FlatDetectionSchema, Type.Null()], { description: 'flat CMS detection (cmsDetection mapping), null when nothing was detected' }),
  result: Type.Unknown({ description: 'the result tree of the root node (detections, regions, branch_results), null when nothing was detected' }),
  actions: Type.Array(ActionOutcomeSchema),
  timings: InferTimingsSchema,
  tracking: Type.Optional(Type.Union([TrackingSchema, Type.Null()], { description: "the pipeline's `tracking` settings (root node), for the relay's tracker; absent: the defaults" })),
  modelInput: Type.Optional(
    Type.Object(
      { width: Type.Integer({ minimum: 1 }), height: Type.Integer({ minimum: 1 }) },
      { description: "the root detector's input size: a caller may send detect-stage images no larger (the relay downscales them)" },
    ),
  ),
});
export type InferAnswer = Static<typeof InferAnswerSchema>;

/** Every error answer of the API. */
export const ErrorReplySchema = Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: true });

export function inferPath(modelId: string): string {
  return `/v1/models/${encodeURIComponent(modelId)}/infer`;
}

/** The query string carrying a request's context. */
export function contextQuery(context: InferContext): URLSearchParams {
  const params = new URLSearchParams();
  for (const key of Object.keys(InferContextFields) as InferContextField[]) {
    const value = context[key];
    if (value !== undefined) params.set(key, value);
  }
  return params;
}

const ajv = new Ajv({ allErrors: false, strict: false });
const checkAnswer = ajv.compile<InferAnswer>(InferAnswerSchema);

/** Whether a 200 body is an answer the relay can use; the reason when it is not. */
export function checkInferAnswer(body: unknown): { ok: true; answer: InferAnswer } | { ok: false; reason: string } {
  if (checkAnswer(body)) return { ok: true, answer: body };
  const e = checkAnswer.errors?.[0];
  return { ok: false, reason: e ? `${e.instancePath || '/'} ${e.message ?? 'is invalid'}` : 'invalid answer' };
}
