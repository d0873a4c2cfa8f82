import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coded, INFER_ERRORS } from '../error-codes.js';
import { clientErrorResponse, FRAMEWORK_ERRORS, toCodedError, type ErrorContext } from './errors.js';

const ctx: ErrorContext = { bodyLimit: 2048, imageTypes: ['image/jpeg', 'image/png'] };
/** The codes the README documents for the infer API; a mapping may only produce these. */
const DOCUMENTED = new Set(['BAD_REQUEST', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'NOT_FOUND', 'REQUEST_TIMEOUT', 'HEADERS_TOO_LARGE', 'INTERNAL']);

const framework = (code: string, statusCode?: number, message = `${code} happened`): Error => Object.assign(new Error(message), { code, ...(statusCode ? { statusCode } : {}) });

test('every catalogued framework code maps onto a documented code with a matching status class', () => {
  for (const [fwCode, mapping] of Object.entries(FRAMEWORK_ERRORS)) {
    const coded = toCodedError(framework(fwCode, 400), ctx);
    assert.ok(DOCUMENTED.has(coded.code), `${fwCode} -> ${coded.code}`);
    assert.equal(coded.statusCode, INFER_ERRORS[mapping.code].status, fwCode);
    assert.doesNotMatch(coded.code, /^(FST_|HPE_|ERR_)/, fwCode);
    assert.ok(coded.message.length > 0);
  }
});

test('the multipart limits become BAD_REQUEST with a message that says what to send', () => {
  for (const code of ['FST_PARTS_LIMIT', 'FST_FILES_LIMIT', 'FST_FIELDS_LIMIT']) {
    const coded = toCodedError(framework(code, 413), ctx);
    assert.equal(coded.code, 'BAD_REQUEST');
    assert.equal(coded.statusCode, 400);
    assert.match(coded.message, /image/);
  }
});

test('size and media type errors name the limit and the accepted types', () => {
  const big = toCodedError(framework('FST_ERR_CTP_BODY_TOO_LARGE', 413), ctx);
  assert.deepEqual([big.code, big.statusCode], ['BODY_TOO_LARGE', 413]);
  assert.match(big.message, /2048/);
  assert.equal(toCodedError(framework('FST_REQ_FILE_TOO_LARGE', 413), ctx).code, 'BODY_TOO_LARGE');
  const media = toCodedError(framework('FST_INVALID_MULTIPART_CONTENT_TYPE', 406), ctx);
  assert.deepEqual([media.code, media.statusCode], ['UNSUPPORTED_MEDIA_TYPE', 415]);
  assert.match(media.message, /image\/jpeg, image\/png/);
});

test('schema validation failures are BAD_REQUEST with the validator message', () => {
  const err = Object.assign(new Error('body/modelUrl must be string'), { validation: [{}], statusCode: 400, code: 'FST_ERR_VALIDATION' });
  const coded = toCodedError(err, ctx);
  assert.deepEqual([coded.code, coded.statusCode, coded.message], ['BAD_REQUEST', 400, 'body/modelUrl must be string']);
});

test('our own errors pass through untouched', () => {
  const ours = coded('OVERLOADED', 'full', { retryAfterSeconds: 1 });
  assert.equal(toCodedError(ours, ctx), ours);
});

test('unknown errors: 4xx becomes BAD_REQUEST, 5xx and plain errors INTERNAL without leaking the message', () => {
  const four = toCodedError(framework('FST_SOMETHING_NEW', 422, 'weird input'), ctx);
  assert.deepEqual([four.code, four.statusCode, four.message], ['BAD_REQUEST', 400, 'weird input']);
  const five = toCodedError(framework('FST_BROKEN', 503, 'secret internals'), ctx);
  assert.deepEqual([five.code, five.statusCode, five.message], ['INTERNAL', 500, 'internal error']);
  const plain = toCodedError(new TypeError('x is undefined'), ctx);
  assert.deepEqual([plain.code, plain.statusCode], ['INTERNAL', 500]);
  assert.equal(toCodedError('a string', ctx).code, 'INTERNAL');
  assert.equal(toCodedError(null, ctx).code, 'INTERNAL');
});

test('a code-less parser error counts as the client\'s when asked (malformed multipart)', () => {
  const coded = toCodedError(new Error('Malformed part header'), ctx, { unknown: 'client' });
  assert.deepEqual([coded.code, coded.statusCode, coded.message], ['BAD_REQUEST', 400, 'Malformed part header']);
  // A 5xx framework error stays a server fault even then.
  assert.equal(toCodedError(framework('FST_FILE_BUFFER_NOT_FOUND', 500), ctx, { unknown: 'client' }).code, 'INTERNAL');
});

test('clientErrorResponse writes a complete coded HTTP answer that closes the connection', () => {
  const parse = (raw: string) => {
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    const lines = head.split('\r\n');
    return { status: lines[0], headers: lines.slice(1), body: JSON.parse(body) as { code: string }, length: Buffer.byteLength(body) };
  };
  const timeout = parse(clientErrorResponse(framework('ERR_HTTP_REQUEST_TIMEOUT'), ctx));
  assert.equal(timeout.status, 'HTTP/1.1 408 Request Timeout');
  assert.equal(timeout.body.code, 'REQUEST_TIMEOUT');
  assert.ok(timeout.headers.includes('Connection: close'));
  assert.ok(timeout.headers.includes(`Content-Length: ${timeout.length}`));
  const overflow = parse(clientErrorResponse(framework('HPE_HEADER_OVERFLOW'), ctx));
  assert.equal(overflow.status, 'HTTP/1.1 431 Request Header Fields Too Large');
  assert.equal(overflow.body.code, 'HEADERS_TOO_LARGE');
  const garbage = parse(clientErrorResponse(framework('HPE_INVALID_METHOD'), ctx));
  assert.equal(garbage.status, 'HTTP/1.1 400 Bad Request');
  assert.equal(garbage.body.code, 'BAD_REQUEST');
});
