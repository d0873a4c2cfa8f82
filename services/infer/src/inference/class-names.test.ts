import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodedError } from '@detector-worker/shared/errors';
import { parseImgsz, parseLabelsFile, parseUltralyticsNames } from './class-names.js';

const isCode = (code: string) => (e: unknown) => e instanceof CodedError && e.code === code && e.statusCode === 422;

test('Ultralytics Python-dict names in index order', () => {
  assert.deepEqual(parseUltralyticsNames("{0: 'person', 1: 'bicycle', 2: 'car'}"), ['person', 'bicycle', 'car']);
  // Keys out of order, trailing comma, newlines.
  assert.deepEqual(parseUltralyticsNames("{\n  1: 'b',\n  0: 'a',\n}"), ['a', 'b']);
});

test('names with quotes: Python repr switches to double quotes or escapes', () => {
  assert.deepEqual(parseUltralyticsNames(`{0: "driver's cab", 1: 'say "hi"', 2: 'it\\'s', 3: 'back\\\\slash'}`), [
    "driver's cab",
    'say "hi"',
    "it's",
    'back\\slash',
  ]);
  assert.deepEqual(parseUltralyticsNames("{0: 'caf\\xe9', 1: '\\u8f66'}"), ['café', '车']);
  assert.deepEqual(parseUltralyticsNames("{0: 'plain unicode 车牌'}"), ['plain unicode 车牌']);
});

test('JSON arrays and objects, Python lists', () => {
  assert.deepEqual(parseUltralyticsNames('["a", "b\\"c"]'), ['a', 'b"c']);
  assert.deepEqual(parseUltralyticsNames('{"0": "x", "1": "y"}'), ['x', 'y']);
  assert.deepEqual(parseUltralyticsNames("['x', 'y',]"), ['x', 'y']);
});

test('nonsense and gaps are MODEL_METADATA_INVALID', () => {
  for (const bad of [
    '',
    'person, car',
    '{0: person}',
    "{0: 'a', 2: 'c'}",
    "{1: 'a'}",
    "{0: 'a', 0: 'b'}",
    "{0: 'a'",
    "{0: 'a'} trailing",
    "{-1: 'a'}",
    "{0: 'unterminated}",
    '{}',
    '[]',
    "{'x': 'a'}",
    "{0: 1}",
    "{0: 'bad \\x4'}",
  ]) {
    assert.throws(() => parseUltralyticsNames(bad), isCode('MODEL_METADATA_INVALID'), `should reject ${JSON.stringify(bad)}`);
  }
  assert.throws(() => parseUltralyticsNames("{0: 'a', 2: 'c'}"), /index 1 is missing/);
});

test('labels file: JSON array or one name per line', () => {
  assert.deepEqual(parseLabelsFile('["blue", "green"]'), ['blue', 'green']);
  assert.deepEqual(parseLabelsFile('\uFEFFblue\r\ngreen\n yellow \n\n\n'), ['blue', 'green', 'yellow']);
  assert.deepEqual(parseLabelsFile("{0: 'a', 1: 'b'}"), ['a', 'b']);
  assert.throws(() => parseLabelsFile('a\n\nb'), isCode('LABELS_INVALID'));
  assert.throws(() => parseLabelsFile('\n\n'), isCode('LABELS_INVALID'));
  assert.throws(() => parseLabelsFile('["a", 1]'), isCode('LABELS_INVALID'));
});

test('imgsz literal -> [height, width]', () => {
  assert.deepEqual(parseImgsz('[640, 640]'), [640, 640]);
  assert.deepEqual(parseImgsz('[384, 640]'), [384, 640]);
  assert.deepEqual(parseImgsz('(320, 320)'), [320, 320]);
  assert.deepEqual(parseImgsz('640'), [640, 640]);
  assert.deepEqual(parseImgsz('[224]'), [224, 224]);
  for (const bad of ['', '[]', '[0, 640]', 'big', '[640, 640, 3]', '[1e3]', '[99999999]']) {
    assert.throws(() => parseImgsz(bad), isCode('MODEL_METADATA_INVALID'), `should reject ${bad}`);
  }
});
