import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { expectation, parseEnv, splitList } from './config.js';
import { CodedError } from './errors.js';

const Schema = Type.Object({
  PORT: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  RATE: Type.Number({ default: 2, minimum: 0.01 }),
  ON: Type.Boolean({ default: false }),
  URL: Type.String({ default: 'http://127.0.0.1:8080', format: 'http-url' }),
  NAME: Type.Optional(Type.String()),
});

function rejects(env: Record<string, string>, message: RegExp): void {
  assert.throws(
    () => parseEnv(Schema, env),
    (err: unknown) => err instanceof CodedError && err.code === 'CONFIG_INVALID' && message.test(err.message) && err.details?.variable === Object.keys(env)[0],
    JSON.stringify(env),
  );
}

test('parseEnv: defaults, typed values, empty means unset, other variables ignored', () => {
  assert.deepEqual(parseEnv(Schema, {}), { PORT: 8000, RATE: 2, ON: false, URL: 'http://127.0.0.1:8080' });
  assert.deepEqual(parseEnv(Schema, { PORT: '80', RATE: '0.5', ON: 'yes', URL: 'https://infer:9/', NAME: 'x', PATH: '/bin', PORT2: 'z' }), {
    PORT: 80,
    RATE: 0.5,
    ON: true,
    URL: 'https://infer:9/',
    NAME: 'x',
  });
  assert.deepEqual(parseEnv(Schema, { PORT: '', NAME: '' }), { PORT: 8000, RATE: 2, ON: false, URL: 'http://127.0.0.1:8080' });
});

test('parseEnv: a bad value names the variable, the value and what was expected', () => {
  rejects({ PORT: 'eighty' }, /^PORT="eighty" is invalid: expected an integer between 0 and 65535$/);
  rejects({ PORT: '1e3' }, /^PORT="1e3" is invalid/);
  rejects({ PORT: '0x10' }, /^PORT="0x10" is invalid/);
  rejects({ PORT: '65536' }, /^PORT="65536" is invalid/);
  rejects({ RATE: 'fast' }, /^RATE="fast" is invalid: expected a number of at least 0.01$/);
  rejects({ RATE: '0' }, /^RATE="0" is invalid/);
  rejects({ ON: 'maybe' }, /^ON="maybe" is invalid: expected true\/false/);
  rejects({ URL: 'ftp://x' }, /^URL="ftp:\/\/x" is invalid: expected an http\(s\) URL$/);
  rejects({ URL: 'not a url' }, /^URL="not a url" is invalid/);
});

test('expectation and splitList', () => {
  assert.equal(expectation(Type.Integer({ maximum: 3 })), 'an integer of at most 3');
  assert.equal(expectation(Type.Number()), 'a number');
  assert.equal(expectation(Type.String()), 'a valid value');
  assert.deepEqual(splitList(' a, ,b ,'), ['a', 'b']);
  assert.deepEqual(splitList(undefined), []);
});
