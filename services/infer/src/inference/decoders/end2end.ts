/** End-to-end output `[1, N, 6]`: x1,y1,x2,y2,score,class with NMS done inside the model. */
import type { Box, DecodeOptions, RawDetection } from '../types.js';
import { layout, shapeText, unsupported } from './shape.js';
import type { DetectionDecoder } from './registry.js';

/** End-to-end rows x1,y1,x2,y2,score,class: already suppressed by the model. */
function decodeEnd2end(data: Float32Array, rows: number, cols: number, opts: DecodeOptions): RawDetection[] {
  if (cols < 6) return [];
  const threshold = opts.confThreshold;
  const filter = opts.classFilter ?? null;
  const out: RawDetection[] = [];
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    const s = data[o + 4]!;
    if (!(s >= threshold)) continue;
    const c = Math.round(data[o + 5]!);
    if (!(c >= 0) || !Number.isSafeInteger(c)) continue;
    if (filter && !filter.has(c)) continue;
    const box: Box = [data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!];
    if (!box.every(Number.isFinite) || !(box[2] > box[0] && box[3] > box[1])) continue;
    out.push({ classIndex: c, confidence: s, box });
  }
  return out;
}

export const end2end: DetectionDecoder = {
  format: 'end2end',
  decode(data, dims, opts, maxDetections) {
    const [rows, cols] = layout('end2end', data, dims);
    if (cols < 6) throw unsupported(`end2end output ${shapeText(dims)} needs 6 columns (x1,y1,x2,y2,score,class)`, dims);
    const dets = decodeEnd2end(data, rows, cols, opts).sort((x, y) => y.confidence - x.confidence);
    return dets.length > maxDetections ? dets.slice(0, maxDetections) : dets;
  },
};
