/**
 * Which decoder fits a model's first output: the shape, the ONNX metadata (`task`, `names`,
 * `end2end` / `nms`) and the configured class count decide together, since a shape alone is
 * ambiguous (is `[1, 84, 8400]` channels-first YOLOv8 or 84 YOLOv5 rows of 8400 columns?).
 */
import { parseUltralyticsNames } from '../class-names.js';
import type { OnnxMetadata, OutputFormat } from '../types.js';
import { known, shapeText, unsupported } from './shape.js';

const FORMATS: readonly OutputFormat[] = ['yolov8', 'yolov5', 'end2end', 'classify'];

export interface FormatOptions {
  /** Configured layout (pipeline.json `outputFormat`); still checked against the shape. */
  override?: OutputFormat;
  /** Number of class names known for the model (metadata, classNames or a labels file). */
  numClasses?: number;
  task?: 'detect' | 'classify';
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

