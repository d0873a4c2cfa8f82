/**
 * One decoder per detection output layout, each in its own file; adding a layout means adding
 * a file and a line here (and teaching detect-format.ts to recognise its shape).
 * Boxes stay in model-input pixels; letterbox.ts maps them back to the image.
 */
import type { DecodeOptions, OutputFormat, RawDetection } from '../types.js';
import { end2end } from './end2end.js';
import { unsupported } from './shape.js';
import { yolov5 } from './yolov5.js';
import { yolov8 } from './yolov8.js';

export interface DetectionDecoder {
  readonly format: OutputFormat;
  /** Detections sorted by confidence, at most maxDetections, after per-class NMS where the model has none. */
  decode(data: Float32Array, dims: readonly number[], opts: DecodeOptions, maxDetections: number): RawDetection[];
}

const DEFAULT_MAX_DETECTIONS = 300;

const DETECTION_DECODERS: ReadonlyMap<OutputFormat, DetectionDecoder> = new Map([yolov8, yolov5, end2end].map((d) => [d.format, d]));

/**
 * Detections in model-input pixels, [x1,y1,x2,y2], sorted by confidence (highest first).
 * Confidence threshold and class filter apply before per-class NMS.
 */
export function decodeDetections(format: OutputFormat, data: Float32Array, dims: readonly number[], opts: DecodeOptions): RawDetection[] {
  if (format === 'classify') throw unsupported('a classification output has no boxes: use decodeClassification', dims);
  const decoder = DETECTION_DECODERS.get(format);
  if (!decoder) throw unsupported(`unknown output format "${String(format)}"`, dims);
  return decoder.decode(data, dims, opts, opts.maxDetections ?? DEFAULT_MAX_DETECTIONS);
}
