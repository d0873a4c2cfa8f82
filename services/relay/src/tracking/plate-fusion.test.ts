import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance, fusePlates, normalisePlate } from './plate-fusion.js';

test('edit distance and normalisation', () => {
  assert.equal(editDistance('DR68651', 'DR6865I'), 1);
  assert.equal(editDistance('DR68651', 'R68651'), 1);
  assert.equal(editDistance('KRW301', 'AD799KB'), 7);
  assert.equal(normalisePlate(' dr-686 51 '), 'DR68651');
});

test('noisy reads of one plate: the similar group wins over one confident stray read', () => {
  const fused = fusePlates([
    { text: 'DR68651', confidence: 0.9 },
    { text: 'DR6865I', confidence: 0.7 },
    { text: 'OR68651', confidence: 0.6 },
    { text: 'XK12345', confidence: 0.99 },
    { text: 'DR68651', confidence: 0.95 },
  ])!;
  assert.equal(fused.text, 'DR68651');
  assert.equal(fused.support, 4);
  assert.ok(fused.confidence > 0.5 && fused.confidence < 0.95, String(fused.confidence));
});

test('per-position vote recovers a plate no single read got right', () => {
  const fused = fusePlates([
    { text: 'DR6865I', confidence: 0.8 },
    { text: '0R68651', confidence: 0.8 },
    { text: 'DR88651', confidence: 0.7 },
  ])!;
  assert.equal(fused.text, 'DR68651');
  assert.equal(fused.support, 3);
});

test('summed confidence beats read count: three weak misreads do not outvote two sure reads', () => {
  const fused = fusePlates([
    { text: 'KRW301', confidence: 0.95 },
    { text: 'KRW301', confidence: 0.97 },
    { text: 'AD799KB', confidence: 0.3 },
    { text: 'AD799K8', confidence: 0.3 },
    { text: 'AD79SKB', confidence: 0.3 },
  ])!;
  assert.equal(fused.text, 'KRW301');
});

test('a dropped character keeps the read in its group; the usual length decides the text', () => {
  const fused = fusePlates([
    { text: 'AD799KB', confidence: 0.9 },
    { text: 'AD79KB', confidence: 0.95 },
    { text: 'AD799KB', confidence: 0.85 },
  ])!;
  assert.equal(fused.text, 'AD799KB');
  assert.equal(fused.support, 3);
});

test('nothing to fuse: empty, blank or junk reads give null; bad confidences do not poison', () => {
  assert.equal(fusePlates([]), null);
  assert.equal(fusePlates([{ text: ' -- ', confidence: 0.9 }]), null);
  const fused = fusePlates([
    { text: 'KRW301', confidence: Number.NaN },
    { text: 'KRW301', confidence: 0.8 },
  ])!;
  assert.equal(fused.text, 'KRW301');
  assert.ok(Number.isFinite(fused.confidence));
});
