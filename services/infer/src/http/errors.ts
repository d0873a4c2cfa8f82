/**
 * One catalogue from the errors fastify, @fastify/multipart and node:http raise on a request
 * to the codes this API documents, so a client never sees a framework's private code
 * (FST_FIELDS_LIMIT, HPE_HEADER_OVERFLOW…) and every answer has the same `{code, message}` shape.
 */
import { STATUS_CODES } from 'node:http';
import { CodedError } from '@detector-worker/shared/errors';
import { coded, type InferErrorCode } from '../error-codes.js';

export interface ErrorContext {
  /** MAX_IMAGE_BYTES, for the message of a 413. */
  bodyLimit: number;
  /** Content types the infer route accepts, for the message of a 415. */
  imageTypes: readonly string[];
}

/** The status comes from the catalogue (../error-codes.ts), the message from here: it can say more. */
interface Mapping {
  code: InferErrorCode;
  message: (ctx: ErrorContext, original: string) => string;
}

const tooLarge: Mapping = { code: 'BODY_TOO_LARGE', message: (ctx) => `request body is over ${ctx.bodyLimit} bytes` };
const mediaType: Mapping = { code: 'UNSUPPORTED_MEDIA_TYPE', message: (ctx) => `send the image as ${ctx.imageTypes.join(', ')} or multipart/form-data` };
const badRequest: Mapping = { code: 'BAD_REQUEST', message: (_ctx, original) => original };
const multipartShape: Mapping = {
  code: 'BAD_REQUEST',
  message: () => 'multipart request has too many parts: send one "image" file and at most one "context" field',
};
const internal: Mapping = { code: 'INTERNAL', message: () => 'internal error' };

/** Framework code -> our code. Anything not listed falls back on its status (see toCodedError). */
export const FRAMEWORK_ERRORS: Readonly<Record<string, Mapping>> = {
  // fastify core, raised while routing and parsing a request
  FST_ERR_CTP_BODY_TOO_LARGE: tooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: mediaType,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_REQUEST', message: () => 'the body does not match its Content-Length' },
  FST_ERR_CTP_EMPTY_JSON_BODY: badRequest,
  FST_ERR_CTP_INVALID_JSON_BODY: badRequest,
  FST_ERR_VALIDATION: badRequest,
  FST_ERR_BAD_URL: badRequest,
  FST_ERR_INVALID_URL: badRequest,
  FST_ERR_MAX_PARAM_LENGTH: badRequest,
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: badRequest,
  FST_ERR_ROUTE_MISSING_CONTENT: badRequest,
  FST_ERR_NOT_FOUND: { code: 'NOT_FOUND', message: () => 'no such route' },
  // @fastify/multipart
  FST_REQ_FILE_TOO_LARGE: tooLarge,
  FST_PARTS_LIMIT: multipartShape,
  FST_FILES_LIMIT: multipartShape,
  FST_FIELDS_LIMIT: multipartShape,
  FST_PROTO_VIOLATION: { code: 'BAD_REQUEST', message: () => 'a multipart field name is not allowed' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: mediaType,
  FST_INVALID_JSON_FIELD_ERROR: badRequest,
  FST_MP_PREMATURE_CLOSE: { code: 'BAD_REQUEST', message: () => 'the request ended before the multipart body was complete' },
  FST_FILE_BUFFER_NOT_FOUND: internal,
  FST_NO_FORM_DATA: internal,
  // node:http, before fastify sees the request (the clientError event)
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'REQUEST_TIMEOUT', message: () => 'the request was not received in time' },
  HPE_HEADER_OVERFLOW: { code: 'HEADERS_TOO_LARGE', message: () => 'request headers are too large' },
};

export interface MapOptions {
  /**
   * How to read an error that carries neither a known code nor a status. `client`: it came
   * from parsing what the client sent (a malformed multipart body), so it is a 400; `server`: 500.
   */
  unknown?: 'client' | 'server';
}

/** Our CodedError for anything a request handler, hook or parser threw. */
export function toCodedError(err: unknown, ctx: ErrorContext, options: MapOptions = {}): CodedError {
  if (err instanceof CodedError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; statusCode?: unknown; validation?: unknown; message?: unknown };
  const original = typeof e.message === 'string' ? e.message : String(err);
  if (e.validation) return coded('BAD_REQUEST', original);
  const known = typeof e.code === 'string' ? FRAMEWORK_ERRORS[e.code] : undefined;
  if (known) return coded(known.code, known.message(ctx, original));
  if (typeof e.code === 'string' && e.code.startsWith('HPE_')) return coded('BAD_REQUEST', 'malformed HTTP request');
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) return coded('BAD_REQUEST', original);
  if (status === undefined && options.unknown === 'client') return coded('BAD_REQUEST', original);
  return coded('INTERNAL');
}

/**
 * The raw HTTP/1.1 answer to a node:http clientError (slow or malformed request), written to
 * the socket because no fastify reply exists yet; the connection is closed after it.
 */
export function clientErrorResponse(err: unknown, ctx: ErrorContext): string {
  const answer = toCodedError(err, ctx, { unknown: 'client' });
  const body = JSON.stringify(answer.toJSON());
  return [
    `HTTP/1.1 ${answer.statusCode} ${STATUS_CODES[answer.statusCode] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
