import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodedError } from '@detector-worker/shared/errors';
import { decodeText, detectOcrLayout } from './ocr.js';

const ALPHABET = [...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_'];

/** Softmax-like rows: `winner` gets p, the rest share 1-p. */
function rows(winners: number[], classes: number, p = 0.9): Float32Array {
  const out = new Float32Array(winners.length * classes).fill((1 - p) / (classes - 1));
  winners.forEach((w, i) => (out[i * classes + w] = p));
  return out;
}

test('fixed slots: argmax per slot, pad characters dropped', () => {
  const text = 'AD799KB';
  const winners = [...text.padEnd(9, '_')].map((c) => ALPHABET.indexOf(c));
  const data = rows(winners, 37);
  data[2 * 37 + ALPHABET.indexOf('7')] = 0.6;
  const read = decodeText('slots', data, [1, 9, 37], 0, { alphabet: ALPHABET, padChar: '_' });
  assert.equal(read.text, 'AD799KB');
  assert.equal(read.characters.length, 7);
  assert.ok(Math.abs(read.characters[2]!.confidence - 0.6) < 1e-6);
  // Repeated characters are separate slots, not collapsed.
  assert.equal(decodeText('slots', rows([5, 5, 36], 37), [1, 3, 37], 0, { alphabet: ALPHABET, padChar: '_' }).text, '55');
});

test('fixed slots: batch items decode independently', () => {
  const a = [...'AB_'].map((c) => ALPHABET.indexOf(c));
  const b = [...'12_'].map((c) => ALPHABET.indexOf(c));
  const data = rows([...a, ...b], 37);
  assert.equal(decodeText('slots', data, [2, 3, 37], 1, { alphabet: ALPHABET, padChar: '_' }).text, '12');
});

test('CTC: blanks dropped, repeats collapsed unless a blank separates them', () => {
  const dict = [...'ABC'];
  // steps: A A _ A B B _ C  -> "AABC"
  const data = rows([1, 1, 0, 1, 2, 2, 0, 3], 4, 0.8);
  data.set([0.05 / 3, 0.95, 0.05 / 3, 0.05 / 3], 1 * 4);
  const read = decodeText('ctc', data, [1, 8, 4], 0, { dictionary: dict });
  assert.equal(read.text, 'AABC');
  assert.ok(Math.abs(read.characters[0]!.confidence - 0.95) < 1e-6, 'best step of the run');
});

test('CTC: logits get a softmax; a space class is dropped', () => {
  const dict = [...'AB'];
  // A, blank, B, then class 3: a space class past the two-character dictionary.
  const logits = new Float32Array([0, 5, 0, 0, 5, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 5]);
  const read = decodeText('ctc', logits, [1, 4, 4], 0, { dictionary: dict });
  assert.equal(read.text, 'AB');
  assert.ok(read.characters.every((c) => c.confidence > 0.9 && c.confidence <= 1));
});

test('layouts are told apart by shapes and charset; unknown ones name the shape', () => {
  const slots = detectOcrLayout({ type: 'uint8', dims: ['N', 64, 128, 3] }, { type: 'float32', dims: ['N', 9, 37] }, { alphabet: ALPHABET, padChar: '_' });
  assert.deepEqual(slots, { layout: 'slots', input: 'uint8-nhwc', height: 64, width: 128, channels: 3 });
  const ctc = detectOcrLayout({ type: 'float32', dims: ['N', 3, 48, 'W'] }, { type: 'float32', dims: ['N', 'T', 6625] }, { dictionary: new Array(6623).fill('x') });
  assert.equal(ctc.layout, 'ctc');
  assert.equal(ctc.height, 48);
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof CodedError);
      return `${err.code}: ${err.message}`;
    }
    return 'no error';
  };
  assert.match(code(() => detectOcrLayout({ type: 'uint8', dims: [1, 64, 128, 3] }, { type: 'float32', dims: [1, 9, 36] }, { alphabet: ALPHABET })), /MODEL_OUTPUT_UNSUPPORTED: .*36.*\[1, 9, 36\]/);
  assert.match(code(() => detectOcrLayout({ type: 'float32', dims: [1, 3, 64, 128] }, { type: 'float32', dims: [1, 9, 37] }, { alphabet: ALPHABET })), /MODEL_INPUT_UNSUPPORTED/);
  assert.match(code(() => detectOcrLayout({ type: 'float32', dims: [1, 3, 64, 128] }, { type: 'float32', dims: [1, 1000] }, { alphabet: ALPHABET })), /MODEL_OUTPUT_UNSUPPORTED: .*\[1, 1000\]/);
  assert.match(code(() => detectOcrLayout({ type: 'float32', dims: [1, 3, 48, 320] }, { type: 'float32', dims: [1, 40, 10] }, { dictionary: ['a'] })), /10 classes/);
  assert.match(code(() => detectOcrLayout({ type: 'uint8', dims: [1, 64, 128, 3] }, { type: 'float32', dims: [1, 9, 37] }, {})), /needs its characters/);
});
