/** Classifier output `[1, nc]`: top-1 class, with softmax applied when the values are logits. */
import type { Classification } from '../types.js';
import { coded } from '../../error-codes.js';

/** Numerically stable softmax (subtracts the max first). Writes into `out` when given. */
export function softmax(values: ArrayLike<number>, out?: Float32Array): Float32Array {
  const n = values.length;
  const dst = out && out.length >= n ? out : new Float32Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (values[i]! > max) max = values[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(values[i]! - max);
    dst[i] = e;
    sum += e;
  }
  if (sum > 0 && Number.isFinite(sum)) for (let i = 0; i < n; i++) dst[i] = dst[i]! / sum;
  return n === dst.length ? dst : dst.subarray(0, n);
}

/** Whether the values already look like a probability distribution (each in [0,1], sum ≈ 1). */
export function isProbabilityDistribution(values: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 1)) return false;
    sum += v;
  }
  return Math.abs(sum - 1) <= 0.01;
}

/**
 * Top-1 class of a classifier output. `softmax: 'auto'` applies it only when the values are
 * not already probabilities (logits from e.g. the ONNX zoo; Ultralytics classifiers end in
 * Softmax). Throws MODEL_OUTPUT_UNSUPPORTED for an empty or all-NaN output.
 */
export function decodeClassification(data: Float32Array, applySoftmax: boolean | 'auto'): Classification & { probabilities: Float32Array } {
  if (data.length === 0) throw coded('MODEL_OUTPUT_UNSUPPORTED', 'classification output is empty');
  const use = applySoftmax === 'auto' ? !isProbabilityDistribution(data) : applySoftmax;
  const probabilities = use ? softmax(data) : data;
  let classIndex = -1;
  let confidence = -Infinity;
  for (let i = 0; i < probabilities.length; i++) {
    const v = probabilities[i]!;
    if (v > confidence) {
      confidence = v;
      classIndex = i;
    }
  }
  if (classIndex < 0) throw coded('MODEL_OUTPUT_UNSUPPORTED', 'classification output holds no numbers (all NaN)');
  return { classIndex, confidence, probabilities };
}
