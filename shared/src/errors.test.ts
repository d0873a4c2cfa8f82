import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CodedError, type ErrorCatalogue } from './errors.js';

const CATALOGUE = {
  THING_MISSING: { status: 404, message: 'no such thing', description: 'asked for a thing that is not there', surface: 'http' },
  DISK_FAILED: { status: 500, otherStatuses: [507], message: 'cannot write', description: 'writing failed (507: disk full)', surface: 'http' },
} as const satisfies ErrorCatalogue;
const coded = CodedError.factory(CATALOGUE);

test('a catalogue factory takes status and default message from the catalogue', () => {
  const err = coded('THING_MISSING');
  assert.ok(err instanceof CodedError && err instanceof Error);
  assert.deepEqual([err.code, err.statusCode, err.message, err.name], ['THING_MISSING', 404, 'no such thing', 'CodedError']);
  const detailed = coded('THING_MISSING', 'thing 7 is not there', { id: 7 }, { cause: new Error('root') });
  assert.deepEqual(detailed.toJSON(), { code: 'THING_MISSING', message: 'thing 7 is not there', id: 7 });
  assert.equal((detailed.cause as Error).message, 'root');
});

test('another status only where the catalogue lists it', () => {
  assert.equal(coded('DISK_FAILED', 'full', undefined, { status: 507 }).statusCode, 507);
  assert.equal(coded('DISK_FAILED', 'x', undefined, { status: 500 }).statusCode, 500);
  assert.equal(coded('DISK_FAILED', 'x', undefined, { status: 200 }).statusCode, 500);
  assert.equal(coded('THING_MISSING', 'x', undefined, { status: 507 }).statusCode, 404);
});

test('withMessage keeps code, status and details; has() tells the catalogue codes', () => {
  const err = coded('DISK_FAILED', 'full', { path: '/x' }, { status: 507 }).withMessage('cache: full');
  assert.deepEqual([err.code, err.statusCode, err.message, err.details], ['DISK_FAILED', 507, 'cache: full', { path: '/x' }]);
  assert.equal(coded.has('THING_MISSING'), true);
  assert.equal(coded.has('toString'), false);
  assert.equal(coded.catalogue, CATALOGUE);
});

test('a code outside the catalogue does not compile', () => {
  // Never called: tsc fails the build if these lines stop being errors.
  const unused = (): unknown => [
    // @ts-expect-error NOT_IN_CATALOGUE is not a catalogued code
    coded('NOT_IN_CATALOGUE', 'x'),
    // @ts-expect-error the constructor is protected: errors come from a catalogue
    new CodedError('ANY_CODE', 'x', 500),
  ];
  assert.equal(typeof unused, 'function');
});
