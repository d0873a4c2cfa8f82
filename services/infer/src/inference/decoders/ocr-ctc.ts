/**
 * CTC text readers (PaddleOCR recognition): output `[N, T, classes]`, a distribution over
 * the dictionary plus the blank (class 0) per time step. Greedy decoding: each step's argmax,
 * repeats of the previous step collapsed, blanks dropped (so `A _ A` reads `AA`, `A A` reads `A`).
 * A character's confidence is the best of its run of steps.
 */
import type { TextRead } from '../types.js';
import { softmax, isProbabilityDistribution } from './classify.js';
import { shapeText, unsupported } from './shape.js';

/** `dictionary` lists classes 1..: class c is dictionary[c - 1]; class 0 is the blank. */
export function decodeCtc(data: Float32Array, dims: readonly number[], item: number, dictionary: readonly string[]): TextRead {
  const [n, steps, classes] = [dims[0], dims[1], dims[2]];
  if (dims.length !== 3 || n === undefined || steps === undefined || classes === undefined || classes < 2) {
    throw unsupported(`CTC OCR needs [N, steps, classes], got ${shapeText(dims)}`, dims);
  }
  if (item < 0 || item >= n || data.length < n * steps * classes) throw unsupported(`CTC OCR output ${shapeText(dims)} holds ${data.length} values`, dims);
  const characters: TextRead['characters'] = [];
  let previous = -1;
  const probs = new Float32Array(classes);
  for (let t = 0; t < steps; t++) {
    const row = data.subarray((item * steps + t) * classes, (item * steps + t + 1) * classes);
    const p = isProbabilityDistribution(row) ? row : softmax(row, probs);
    let best = 0;
    let score = -Infinity;
    for (let c = 0; c < classes; c++) {
      if (p[c]! > score) {
        score = p[c]!;
        best = c;
      }
    }
    if (!Number.isFinite(score)) best = 0;
    if (best !== 0 && best === previous) {
      const last = characters[characters.length - 1];
      if (last && score > last.confidence) last.confidence = score;
    } else if (best !== 0) {
      // A class past the dictionary (a space class the dictionary left out) reads as a space.
      characters.push({ char: dictionary[best - 1] ?? ' ', confidence: score });
    }
    previous = best;
  }
  // Plates are compared as one string: a space class would split the same plate two ways.
  const kept = characters.filter((c) => c.char.trim() !== '');
  return { text: kept.map((c) => c.char).join(''), characters: kept };
}
