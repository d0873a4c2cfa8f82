import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCtcDictionary, parseFlatYaml, parsePlateOcrConfig } from './ocr-config.js';

const FAST_PLATE_OCR = `# Config for Latin-alphabet plates

# Max number of plate slots supported.
max_plate_slots: 9
# All the possible character set for the model output.
alphabet: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_'
pad_char: '_'  # padding
img_height: 64
img_width: 128
keep_aspect_ratio: false
interpolation: linear
image_color_mode: rgb
`;

test('fast-plate-ocr config: slots, alphabet, pad, size, colour mode', () => {
  const c = parsePlateOcrConfig(FAST_PLATE_OCR);
  assert.equal(c.slots, 9);
  assert.equal(c.alphabet.length, 37);
  assert.equal(c.alphabet[36], '_');
  assert.equal(c.padChar, '_');
  assert.deepEqual([c.height, c.width, c.colorMode], [64, 128, 'rgb']);
});

test('flat yaml: quotes keep # and spaces, nested keys are skipped', () => {
  const m = parseFlatYaml(`a: "x # y"\nb: 'it''s' # note\nnested:\n  c: 1\nd: plain\n`);
  assert.equal(m.get('a'), 'x # y');
  assert.equal(m.get('b'), "it's");
  assert.equal(m.has('c'), false);
  assert.equal(m.get('d'), 'plain');
});

test('bad configs name what is wrong', () => {
  assert.throws(() => parsePlateOcrConfig('max_plate_slots: 9\n'), /no alphabet/);
  assert.throws(() => parsePlateOcrConfig(FAST_PLATE_OCR.replace("pad_char: '_'", "pad_char: '#'")), /pad_char/);
  assert.throws(() => parsePlateOcrConfig(FAST_PLATE_OCR.replace('max_plate_slots: 9', 'max_plate_slots: nine')), /max_plate_slots/);
  assert.throws(() => parsePlateOcrConfig(FAST_PLATE_OCR.replace('ABC', 'AAC')), /repeats/);
  assert.throws(() => parsePlateOcrConfig('binary \u0000 garbage'), /no alphabet/);
});

test('CTC dictionary: one character per line, trailing blank lines ignored', () => {
  assert.deepEqual(parseCtcDictionary('a\nb\r\nc\n\n'), ['a', 'b', 'c']);
  assert.throws(() => parseCtcDictionary('a\n\nb\n'), /line 2/);
  assert.throws(() => parseCtcDictionary('ab\n'), /line 1/);
  assert.throws(() => parseCtcDictionary(''), /empty/);
});
