import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addReads, changedValues, fused, type AttributeVotes } from './fusion.js';

test('fusion: per attribute the value with the highest summed confidence wins', () => {
  const votes: AttributeVotes = new Map();
  addReads(votes, { carColor: { value: 'gray', confidence: 0.6 }, carBrand: { value: 'Toyota', confidence: 0.9 } });
  const first = fused(votes);
  addReads(votes, { carColor: { value: 'brown', confidence: 0.7 } });
  assert.equal(fused(votes).carColor!.value, 'brown', '0.7 > 0.6 so far');
  addReads(votes, { carColor: { value: 'gray', confidence: 0.5 }, carBrand: { value: '', confidence: 1 } });
  const after = fused(votes);
  assert.equal(after.carColor!.value, 'gray');
  assert.equal(after.carBrand!.value, 'Toyota');
  assert.equal(after.carColor!.confidence, 0.6, 'the best single read of the winner');
  assert.deepEqual(changedValues(first, after), []);
  assert.deepEqual(changedValues({ carColor: { value: 'brown', confidence: 1 } }, after), ['carColor', 'carBrand'], 'a new attribute is a change too');
});
