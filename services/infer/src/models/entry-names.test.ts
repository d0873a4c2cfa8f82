import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CodedError } from '@detector-worker/shared/errors';
import { normaliseEntryName } from './zip-extract.js';
import { resolveArchivePath } from './mpta-layout.js';

describe('entry names', () => {
  test('normaliseEntryName keeps safe names and drops . segments', () => {
    assert.equal(normaliseEntryName('a/b.onnx'), 'a/b.onnx');
    assert.equal(normaliseEntryName('./a//b/'), 'a/b');
    assert.equal(normaliseEntryName('./'), '');
    assert.equal(normaliseEntryName('a..b/c...onnx'), 'a..b/c...onnx');
  });

  test('normaliseEntryName refuses hostile names', () => {
    for (const name of ['../x', 'a/../../x', 'a/..', '/x', '\\x', 'a\\..\\x', 'C:x', 'c:/x', 'a\0b']) {
      assert.throws(() => normaliseEntryName(name), (err: unknown) => err instanceof CodedError && err.code === 'ARCHIVE_UNSAFE_ENTRY', name);
    }
  });

  test('resolveArchivePath keeps references inside the pipeline folder', () => {
    assert.equal(resolveArchivePath('models/x.onnx'), 'models/x.onnx');
    assert.equal(resolveArchivePath('./models/../x.onnx'), 'x.onnx');
    assert.equal(resolveArchivePath('models\\x.onnx'), 'models/x.onnx');
    for (const ref of ['../x.onnx', 'a/../../x.onnx', '/abs.onnx', 'C:\\x.onnx', '.', 'models/']) {
      assert.equal(resolveArchivePath(ref), undefined, ref);
    }
  });
});
