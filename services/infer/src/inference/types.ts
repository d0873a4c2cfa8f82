/** Shared vocabulary of the inference layer: boxes, raw detections, model descriptions. */

/** [x1, y1, x2, y2] in pixels. */
export type Box = [number, number, number, number];

/** One detection as a model produced it, in the pixel space of the model input tensor. */
export interface RawDetection {
  classIndex: number;
  confidence: number;
  box: Box;
  /** Optional keypoints (e.g. the 4 plate corners of landmark models), input-tensor pixels. */
  keypoints?: Array<[number, number]>;
}

/** Output layouts the decoders understand. */
export type OutputFormat = 'yolov8' | 'yolov5' | 'end2end' | 'classify';

/** How an image was fitted into the model input, so boxes can be mapped back. */
export interface LetterboxInfo {
  srcWidth: number;
  srcHeight: number;
  dstWidth: number;
  dstHeight: number;
  /** scale applied to the source (same on both axes for letterbox). */
  scaleX: number;
  scaleY: number;
  /** padding added on the left / top, in destination pixels. */
  padX: number;
  padY: number;
}

/** A letterbox/stretch with the integer layout of the tensor: resized image plus padding on each side. */
export interface LetterboxGeometry extends LetterboxInfo {
  resizedWidth: number;
  resizedHeight: number;
  padRight: number;
  padBottom: number;
}

export interface DecodeOptions {
  confThreshold: number;
  iouThreshold: number;
  /** When given, only these class indices are kept (applied before NMS, as the original did). */
  classFilter?: ReadonlySet<number> | null;
  /** Number of classes, when known from names; needed to spot landmark columns in YOLOv5 layouts. */
  numClasses?: number;
  maxDetections?: number;
}

export interface Classification {
  classIndex: number;
  confidence: number;
}

/** Key/value strings of an ONNX model's metadata_props (Ultralytics writes names, imgsz, task…). */
export type OnnxMetadata = Record<string, string>;

/** One text read by an OCR model: the kept characters and each one's confidence. */
export interface TextRead {
  text: string;
  characters: Array<{ char: string; confidence: number }>;
}

/** Output layouts of text readers. */
export type OcrLayout = 'slots' | 'ctc';
