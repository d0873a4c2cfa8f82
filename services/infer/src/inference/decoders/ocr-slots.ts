/**
 * Fixed-slot plate readers (fast-plate-ocr): output `[N, slots, alphabet]`, one softmax per
 * character slot. Each slot's argmax is its character; pad characters fill the slots a short
 * plate does not use and are dropped. No blank, no repeats: `AA` is two slots of `A`.
 */
import type { TextRead } from '../types.js';
import { shapeText, unsupported } from './shape.js';

export function decodeSlots(data: Float32Array, dims: readonly number[], item: number, alphabet: readonly string[], padChar: string): TextRead {
  const [n, slots, size] = [dims[0], dims[1], dims[2]];
  if (dims.length !== 3 || n === undefined || slots === undefined || size === undefined || size !== alphabet.length) {
    throw unsupported(`fixed-slot OCR needs [N, slots, ${alphabet.length}] (the alphabet size), got ${shapeText(dims)}`, dims);
  }
  if (item < 0 || item >= n || data.length < n * slots * size) throw unsupported(`fixed-slot OCR output ${shapeText(dims)} holds ${data.length} values`, dims);
  const characters: TextRead['characters'] = [];
  for (let s = 0; s < slots; s++) {
    const base = (item * slots + s) * size;
    let best = 0;
    let score = -Infinity;
    for (let c = 0; c < size; c++) {
      const v = data[base + c]!;
      if (v > score) {
        score = v;
        best = c;
      }
    }
    const char = alphabet[best]!;
    // NaN from a broken model reads as nothing rather than as a confident character.
    if (char === padChar || !Number.isFinite(score)) continue;
    characters.push({ char, confidence: score });
  }
  return { text: characters.map((c) => c.char).join(''), characters };
}
