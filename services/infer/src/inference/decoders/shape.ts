/** Shape helpers every decoder shares: error reporting, dimension checks, box conversion. */
import { CodedError } from '@detector-worker/shared/errors';
import type { Box, OutputFormat } from '../types.js';
import { coded } from '../../error-codes.js';

export function unsupported(message: string, dims: readonly (number | string)[]): CodedError {
  return coded('MODEL_OUTPUT_UNSUPPORTED', message, { outputShape: dims.map((d) => (typeof d === 'number' ? d : String(d))) });
}

export function shapeText(dims: readonly (number | string)[]): string {
  return `[${dims.map((d) => (typeof d === 'number' ? String(d) : JSON.stringify(d))).join(', ')}]`;
}

/** A concrete dimension, or null for a symbolic / unknown one. */
export function known(d: number | string | undefined): number | null {
  return typeof d === 'number' && Number.isSafeInteger(d) && d >= 0 ? d : null;
}

/** [rows, cols] of a rank-3 `[batch, rows, cols]` (or rank-2) output, checked against the data. */
export function layout(format: OutputFormat, data: Float32Array, dims: readonly number[]): [number, number] {
  const r = dims.length === 3 ? dims[1] : dims.length === 2 ? dims[0] : undefined;
  const c = dims.length === 3 ? dims[2] : dims.length === 2 ? dims[1] : undefined;
  if (r === undefined || c === undefined || !Number.isSafeInteger(r) || !Number.isSafeInteger(c) || r < 0 || c < 0) {
    throw unsupported(`${format} decoder needs a [1, rows, cols] output, got ${shapeText(dims)}`, dims);
  }
  if (data.length < r * c) throw unsupported(`${format} output ${shapeText(dims)} needs ${r * c} values, the tensor holds ${data.length}`, dims);
  return [r, c];
}

export function xywhBox(cx: number, cy: number, w: number, h: number): Box | null {
  // NaN / negative sizes from a broken model are dropped, not propagated.
  if (!(w > 0 && h > 0) || !Number.isFinite(cx) || !Number.isFinite(cy) || !Number.isFinite(w) || !Number.isFinite(h)) return null;
  const hw = w / 2;
  const hh = h / 2;
  return [cx - hw, cy - hh, cx + hw, cy + hh];
}

