/**
 * Turns raw model outputs into detections / classifications.
 *
 * Layouts (batch 1; only the first image of a batch is decoded):
 * - yolov8  `[1, 4+nc, N]` channels-first (Ultralytics YOLOv8/YOLO11 detect): rows cx,cy,w,h then
 *           nc class scores, already sigmoid, no objectness.
 * - yolov5  `[1, N, 5+nc]`: cx,cy,w,h,obj,classes; score = obj × class. Variant with landmarks
 *           `[1, N, 5+2k+nc]` (e.g. HyperLPR's plate detector: 4 corners between obj and classes).
 * - end2end `[1, N, 6]`: x1,y1,x2,y2,score,class with NMS done inside the model.
 * - classify `[1, nc]`.
 * Boxes stay in model-input pixels; letterbox.ts maps them back to the image.
 */
import { CodedError } from '@detector-worker/shared/errors';
import { parseUltralyticsNames } from './class-names.js';
import { nms } from './nms.js';
import type { Box, Classification, DecodeOptions, OnnxMetadata, OutputFormat, RawDetection } from './types.js';

const FORMATS: readonly OutputFormat[] = ['yolov8', 'yolov5', 'end2end', 'classify'];
const DEFAULT_MAX_DETECTIONS = 300;

export interface FormatOptions {
  /** Configured layout (pipeline.json `outputFormat`); still checked against the shape. */
  override?: OutputFormat;
  /** Number of class names known for the model (metadata, classNames or a labels file). */
  numClasses?: number;
  task?: 'detect' | 'classify';
}

function unsupported(message: string, dims: readonly (number | string)[]): CodedError {
  return new CodedError('MODEL_OUTPUT_UNSUPPORTED', message, 422, { outputShape: dims.map((d) => (typeof d === 'number' ? d : String(d))) });
}

function shapeText(dims: readonly (number | string)[]): string {
  return `[${dims.map((d) => (typeof d === 'number' ? String(d) : JSON.stringify(d))).join(', ')}]`;
}

/** A concrete dimension, or null for a symbolic / unknown one. */
function known(d: number | string | undefined): number | null {
  return typeof d === 'number' && Number.isSafeInteger(d) && d >= 0 ? d : null;
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && /^(true|1)$/i.test(v.trim());
}

function namesCount(meta: OnnxMetadata): number | undefined {
  if (!meta.names) return undefined;
  try {
    return parseUltralyticsNames(meta.names).length;
  } catch {
    // Invalid names are reported where the names are loaded; here they just give no hint.
    return undefined;
  }
}

/** Dims with a leading batch of 1 (or symbolic) removed. */
function withoutBatch(dims: readonly (number | string)[]): readonly (number | string)[] {
  const first = dims[0];
  return dims.length >= 2 && (first === 1 || known(first) === null) ? dims.slice(1) : dims;
}

/** How many numbers a classification output holds, when every non-batch dim but one is 1. */
function classifyWidth(rest: readonly (number | string)[]): number | null {
  const big = rest.filter((d) => d !== 1);
  if (big.length > 1) return null;
  if (big.length === 0) return rest.length ? 1 : null;
  return known(big[0]);
}

/**
 * Picks the decoder for a model's first output. Metadata (`task`, `names`, `end2end`/`nms`)
 * and the configured class count decide where the shape alone is ambiguous. Throws
 * MODEL_OUTPUT_UNSUPPORTED (422) naming the shape when no decoder fits.
 */
export function detectOutputFormat(outputDims: readonly (number | string)[], meta: OnnxMetadata, opts: FormatOptions = {}): OutputFormat {
  const shape = shapeText(outputDims);
  const metaTask = meta.task?.trim();
  if (!opts.task && metaTask && metaTask !== 'detect' && metaTask !== 'classify') {
    throw unsupported(`model task "${metaTask}" is not supported (detect and classify are); output ${shape}`, outputDims);
  }
  const task = opts.task ?? (metaTask === 'detect' || metaTask === 'classify' ? metaTask : undefined);
  const nc = opts.numClasses ?? namesCount(meta);
  // Ultralytics records NMS-in-the-model as `end2end: True` or `'nms': True` inside `args`.
  const endToEnd = isTrue(meta.end2end) || isTrue(meta.nms) || /['"]nms['"]\s*:\s*True/.test(meta.args ?? '');
  const rest = withoutBatch(outputDims);
  if (outputDims.length === 0) throw unsupported('model output has no shape (scalar or unknown rank); no decoder fits', outputDims);

  if (opts.override) {
    if (!FORMATS.includes(opts.override)) throw unsupported(`outputFormat "${String(opts.override)}" is unknown (${FORMATS.join(', ')})`, outputDims);
    checkOverride(opts.override, rest, shape, outputDims, nc);
    return opts.override;
  }

  const cw = classifyWidth(rest);
  if (task === 'classify') {
    if (cw !== null && cw >= 1) return 'classify';
    throw unsupported(`classification model output ${shape} is not [1, classes]`, outputDims);
  }
  if (rest.length === 1 && task !== 'detect') {
    if (cw !== null && cw >= 1) return 'classify';
    throw unsupported(`output ${shape} has an unknown number of classes`, outputDims);
  }

  if (rest.length === 2) {
    const a = known(rest[0]);
    const b = known(rest[1]);
    if (a !== null && b !== null) {
      const format = detectionLayout(a, b, nc, endToEnd);
      if (format) return format;
    }
    // [N, cols] with a symbolic N: the row width alone tells the YOLOv5 / end2end layouts.
    if (a === null && b !== null) {
      const format = detectionLayout(Number.MAX_SAFE_INTEGER, b, nc, endToEnd);
      if (format && format !== 'yolov8') return format;
    }
    if (a !== null && b === null && a >= 5 && (nc === undefined || a === 4 + nc)) return 'yolov8';
  }
  if (task !== 'detect' && cw !== null && cw >= 1 && rest.length > 1) return 'classify';
  const hint = nc !== undefined ? ` with ${nc} class names` : '';
  throw unsupported(
    `model output ${shape}${hint} matches no supported layout: YOLOv8/YOLO11 [1, 4+classes, anchors], YOLOv5 [1, anchors, 5+classes], end-to-end [1, N, 6] or classification [1, classes]`,
    outputDims,
  );
}

/** Layout of a rank-2 (batch removed) detection output [a, b], or null. */
function detectionLayout(a: number, b: number, nc: number | undefined, endToEnd: boolean): OutputFormat | null {
  if (endToEnd && b >= 6 && b <= 7) return 'end2end';
  if (nc !== undefined && nc > 0) {
    if (a === 4 + nc && b !== 5 + nc) return 'yolov8';
    if (b === 5 + nc) return 'yolov5';
    // Landmark pairs between obj and the classes; rows must still outnumber columns, or a
    // channels-first tensor with the wrong class count would pass as one.
    const extra = b - 5 - nc;
    if (extra > 0 && extra % 2 === 0 && a > b) return 'yolov5';
    if (b === 6 && a > b) return 'end2end';
    return null;
  }
  // No class count: anchors outnumber channels in every real YOLO export.
  if (b === 6 && a > b) return 'end2end';
  if (a >= 5 && b > a) return 'yolov8';
  if (b >= 6 && a > b) return 'yolov5';
  return null;
}

function checkOverride(
  format: OutputFormat,
  rest: readonly (number | string)[],
  shape: string,
  dims: readonly (number | string)[],
  nc: number | undefined,
): void {
  if (format === 'classify') {
    if (classifyWidth(rest) === null) throw unsupported(`outputFormat "classify" needs an output like [1, classes]; the model gives ${shape}`, dims);
    return;
  }
  if (rest.length !== 2) throw unsupported(`outputFormat "${format}" needs a rank-3 output [1, a, b]; the model gives ${shape}`, dims);
  const a = known(rest[0]);
  const b = known(rest[1]);
  if (format === 'yolov8' && a !== null && (a < 5 || (nc !== undefined && a !== 4 + nc))) {
    throw unsupported(`outputFormat "yolov8" needs [1, 4+classes, anchors]; the model gives ${shape}${nc !== undefined ? ` for ${nc} classes` : ''}`, dims);
  }
  if (format === 'yolov5' && b !== null && (b < 6 || (nc !== undefined && (b - 5 - nc < 0 || (b - 5 - nc) % 2 !== 0)))) {
    throw unsupported(`outputFormat "yolov5" needs [1, anchors, 5+classes]; the model gives ${shape}${nc !== undefined ? ` for ${nc} classes` : ''}`, dims);
  }
  if (format === 'end2end' && b !== null && b < 6) {
    throw unsupported(`outputFormat "end2end" needs [1, N, 6] rows of x1,y1,x2,y2,score,class; the model gives ${shape}`, dims);
  }
}

/** [rows, cols] of a rank-3 `[batch, rows, cols]` (or rank-2) output, checked against the data. */
function layout(format: OutputFormat, data: Float32Array, dims: readonly number[]): [number, number] {
  const r = dims.length === 3 ? dims[1] : dims.length === 2 ? dims[0] : undefined;
  const c = dims.length === 3 ? dims[2] : dims.length === 2 ? dims[1] : undefined;
  if (r === undefined || c === undefined || !Number.isSafeInteger(r) || !Number.isSafeInteger(c) || r < 0 || c < 0) {
    throw unsupported(`${format} decoder needs a [1, rows, cols] output, got ${shapeText(dims)}`, dims);
  }
  if (data.length < r * c) throw unsupported(`${format} output ${shapeText(dims)} needs ${r * c} values, the tensor holds ${data.length}`, dims);
  return [r, c];
}

/** Scratch buffers reused across frames (a worker thread decodes one output at a time). */
let bestScore = new Float32Array(0);
let bestClass = new Int32Array(0);

function scratch(n: number): void {
  if (bestScore.length < n) {
    bestScore = new Float32Array(n);
    bestClass = new Int32Array(n);
  }
}

function xywhBox(cx: number, cy: number, w: number, h: number): Box | null {
  // NaN / negative sizes from a broken model are dropped, not propagated.
  if (!(w > 0 && h > 0) || !Number.isFinite(cx) || !Number.isFinite(cy) || !Number.isFinite(w) || !Number.isFinite(h)) return null;
  const hw = w / 2;
  const hh = h / 2;
  return [cx - hw, cy - hh, cx + hw, cy + hh];
}

/**
 * YOLOv8: each anchor's best class over all classes, then threshold and class filter (the
 * filter comes after the argmax, as Ultralytics' `classes=` does: an anchor whose best class
 * is filtered out is dropped, it does not fall back to a weaker allowed class).
 */
function decodeYolov8(data: Float32Array, channels: number, anchors: number, opts: DecodeOptions): RawDetection[] {
  const nc = channels - 4;
  if (nc < 1) return [];
  const threshold = opts.confThreshold;
  const filter = opts.classFilter ?? null;
  if (filter && filter.size > 0 && filter.size * 4 < nc) return decodeYolov8Filtered(data, nc, anchors, threshold, filter);
  scratch(anchors);
  const score = bestScore;
  const cls = bestClass;
  // Row by row: each class row is contiguous, so the scan reads memory in order.
  const row4 = 4 * anchors;
  for (let a = 0; a < anchors; a++) {
    score[a] = data[row4 + a]!;
    cls[a] = 0;
  }
  for (let c = 1; c < nc; c++) {
    const base = (4 + c) * anchors;
    for (let a = 0; a < anchors; a++) {
      const v = data[base + a]!;
      if (v > score[a]!) {
        score[a] = v;
        cls[a] = c;
      }
    }
  }
  const out: RawDetection[] = [];
  for (let a = 0; a < anchors; a++) {
    const s = score[a]!;
    if (!(s >= threshold)) continue;
    const c = cls[a]!;
    if (filter && !filter.has(c)) continue;
    const box = xywhBox(data[a]!, data[anchors + a]!, data[2 * anchors + a]!, data[3 * anchors + a]!);
    if (box) out.push({ classIndex: c, confidence: s, box });
  }
  return out;
}

/**
 * Same result as the full scan when only a few classes are wanted (car/truck/bus of 80): an
 * anchor can only survive if one of the wanted rows reaches the threshold, so those rows are
 * scanned first and the full argmax runs only for the few anchors that pass.
 */
function decodeYolov8Filtered(data: Float32Array, nc: number, anchors: number, threshold: number, filter: ReadonlySet<number>): RawDetection[] {
  scratch(anchors);
  const score = bestScore;
  score.fill(-Infinity, 0, anchors);
  for (const c of filter) {
    if (c < 0 || c >= nc) continue;
    const base = (4 + c) * anchors;
    for (let a = 0; a < anchors; a++) {
      const v = data[base + a]!;
      if (v > score[a]!) score[a] = v;
    }
  }
  const out: RawDetection[] = [];
  for (let a = 0; a < anchors; a++) {
    if (!(score[a]! >= threshold)) continue;
    let best = data[4 * anchors + a]!;
    let c = 0;
    for (let k = 1; k < nc; k++) {
      const v = data[(4 + k) * anchors + a]!;
      if (v > best) {
        best = v;
        c = k;
      }
    }
    if (!filter.has(c)) continue;
    const box = xywhBox(data[a]!, data[anchors + a]!, data[2 * anchors + a]!, data[3 * anchors + a]!);
    if (box) out.push({ classIndex: c, confidence: best, box });
  }
  return out;
}

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

/**
 * Detections in model-input pixels, [x1,y1,x2,y2], sorted by confidence (highest first).
 * Confidence threshold and class filter apply before per-class NMS.
 */
export function decodeDetections(format: OutputFormat, data: Float32Array, dims: readonly number[], opts: DecodeOptions): RawDetection[] {
  const maxDetections = opts.maxDetections ?? DEFAULT_MAX_DETECTIONS;
  switch (format) {
    case 'yolov8': {
      const [channels, anchors] = layout(format, data, dims);
      if (channels < 5) throw unsupported(`yolov8 output ${shapeText(dims)} has fewer than 5 channels (4 box + classes)`, dims);
      return nms(decodeYolov8(data, channels, anchors, opts), opts.iouThreshold, { maxDetections });
    }
    case 'yolov5': {
      const [rows, cols] = layout(format, data, dims);
      if (cols < 6) throw unsupported(`yolov5 output ${shapeText(dims)} has fewer than 6 columns (4 box + obj + classes)`, dims);
      const nc = opts.numClasses;
      const extra = nc !== undefined && nc > 0 ? cols - 5 - nc : 0;
      if (extra < 0 || extra % 2 !== 0) {
        throw unsupported(`yolov5 output ${shapeText(dims)} does not fit ${nc} classes (5 + landmark pairs + classes columns expected)`, dims);
      }
      return nms(decodeYolov5(data, rows, cols, extra, opts), opts.iouThreshold, { maxDetections });
    }
    case 'end2end': {
      const [rows, cols] = layout(format, data, dims);
      if (cols < 6) throw unsupported(`end2end output ${shapeText(dims)} needs 6 columns (x1,y1,x2,y2,score,class)`, dims);
      const dets = decodeEnd2end(data, rows, cols, opts).sort((x, y) => y.confidence - x.confidence);
      return dets.length > maxDetections ? dets.slice(0, maxDetections) : dets;
    }
    case 'classify':
      throw unsupported('a classification output has no boxes: use decodeClassification', dims);
    default:
      throw unsupported(`unknown output format "${String(format)}"`, dims);
  }
}

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
  if (data.length === 0) throw new CodedError('MODEL_OUTPUT_UNSUPPORTED', 'classification output is empty', 422);
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
  if (classIndex < 0) throw new CodedError('MODEL_OUTPUT_UNSUPPORTED', 'classification output holds no numbers (all NaN)', 422);
  return { classIndex, confidence, probabilities };
}
