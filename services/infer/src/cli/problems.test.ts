import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coded } from '../error-codes.js';
import { problemsOf } from './problems.js';

test('problemsOf: lists, missing files and single errors', () => {
  const listed = coded('PIPELINE_INVALID', 'x', { problems: [{ path: '$.a', message: 'm1' }, { path: '$.b', message: 'm2' }] });
  assert.deepEqual(problemsOf(listed), [
    { path: '$.a', message: 'm1', code: 'PIPELINE_INVALID' },
    { path: '$.b', message: 'm2', code: 'PIPELINE_INVALID' },
  ]);
  const single = coded('MODEL_OUTPUT_UNSUPPORTED', '$.pipeline: output [1,7] is not understood', { path: '$.pipeline' });
  assert.deepEqual(problemsOf(single), [{ path: '$.pipeline', message: 'output [1,7] is not understood', code: 'MODEL_OUTPUT_UNSUPPORTED' }]);
  assert.deepEqual(problemsOf(new Error('boom')), [{ path: '$', message: 'boom', code: 'UNEXPECTED' }]);
});
