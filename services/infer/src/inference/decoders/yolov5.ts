/**
 * YOLOv5 output `[1, N, 5+nc]`: cx,cy,w,h,obj,classes; score = obj × class. The landmark
 * variant `[1, N, 5+2k+nc]` (HyperLPR's plate detector: 4 corners between obj and classes)
 * keeps the points with each detection.
 */
import { nms } from '../nms.js';
import type { DecodeOptions, RawDetection } from '../types.js';
import { layout, shapeText, unsupported, xywhBox } from './shape.js';
import type { DetectionDecoder } from './registry.js';

/** YOLOv5 rows (optionally with `keypointValues` landmark numbers between obj and classes). */
function decodeYolov5(data: Float32Array, rows: number, cols: number, keypointValues: number, opts: DecodeOptions): RawDetection[] {
  const clsStart = 5 + keypointValues;
  const nc = cols - clsStart;
  if (nc < 1) return [];
  const threshold = opts.confThreshold;
  const filter = opts.classFilter ?? null;
  const out: RawDetection[] = [];
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    const obj = data[o + 4]!;
    // score = obj × class <= obj for probabilities: rows with a weak obj cannot pass.
    if (!(obj >= threshold)) continue;
    let best = data[o + clsStart]!;
    let c = 0;
    for (let k = 1; k < nc; k++) {
      const v = data[o + clsStart + k]!;
      if (v > best) {
        best = v;
        c = k;
      }
    }
    const s = obj * best;
    if (!(s >= threshold)) continue;
    if (filter && !filter.has(c)) continue;
    const box = xywhBox(data[o]!, data[o + 1]!, data[o + 2]!, data[o + 3]!);
    if (!box) continue;
    const det: RawDetection = { classIndex: c, confidence: s, box };
    if (keypointValues > 0) {
      const kps: Array<[number, number]> = [];
      for (let k = 0; k < keypointValues; k += 2) kps.push([data[o + 5 + k]!, data[o + 6 + k]!]);
      det.keypoints = kps;
    }
    out.push(det);
  }
  return out;
}

export const yolov5: DetectionDecoder = {
  format: 'yolov5',
  decode(data, dims, opts, maxDetections) {
    const [rows, cols] = layout('yolov5', data, dims);
    if (cols < 6) throw unsupported(`yolov5 output ${shapeText(dims)} has fewer than 6 columns (4 box + obj + classes)`, dims);
    const nc = opts.numClasses;
    const extra = nc !== undefined && nc > 0 ? cols - 5 - nc : 0;
    if (extra < 0 || extra % 2 !== 0) {
      throw unsupported(`yolov5 output ${shapeText(dims)} does not fit ${nc} classes (5 + landmark pairs + classes columns expected)`, dims);
    }
    return nms(decodeYolov5(data, rows, cols, extra, opts), opts.iouThreshold, { maxDetections });
  },
};
