/** Messages between the main thread and the onnxruntime worker threads. */
import type { OcrLayout, OutputFormat, RawDetection, TextRead } from '../inference/types.js';
import type { Placement } from '../inference/letterbox.js';

export interface SessionSpec {
  /** Unique per loaded pipeline node: `<pipelineKey>/<nodeModelId>`. */
  key: string;
  modelPath: string;
  intraOpThreads: number;
}

/** Which sessions are still wanted; workers drop the others when `epoch` changes. */
export interface LiveSet {
  epoch: number;
  keys: string[];
}

export interface TensorInfo {
  name: string;
  type: string;
  dims: Array<number | string>;
}

export interface LoadTask {
  kind: 'load';
  session: SessionSpec;
  live: LiveSet;
  /** [height, width] to use for dynamic spatial input dims during warm-up. */
  spatialHint: [number, number];
}

export interface LoadReply {
  threadId: number;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  createMs: number;
  warmMs: number;
}

export interface Normalisation {
  channelOrder: 'rgb' | 'bgr';
  mean?: [number, number, number];
  std?: [number, number, number];
}

interface RunTaskBase {
  session: SessionSpec;
  live: LiveSet;
  /** Interleaved 3-channel uint8 pixels, already resized to the model input size. */
  pixels: Uint8Array;
  width: number;
  height: number;
  norm: Normalisation;
  inputName: string;
  /** Letterbox: pixels go at this place of a larger padded tensor. */
  placement?: Placement;
}

export interface DetectTask extends RunTaskBase {
  kind: 'detect';
  format: Exclude<OutputFormat, 'classify'>;
  confThreshold: number;
  iouThreshold: number;
  classFilter: number[] | null;
  numClasses: number | undefined;
}

export interface ClassifyTask extends RunTaskBase {
  kind: 'classify';
  softmax: boolean | 'auto';
}

/** Characters of a text reader; sent with every task, kept per session by the worker. */
export interface OcrCharsetSpec {
  alphabet?: string[];
  padChar?: string;
  dictionary?: string[];
}

/**
 * A text read: `items` images of the same size, interleaved RGB back to back, run as one
 * batch. uint8-nhwc feeds the pixels as they are (fast-plate-ocr scales inside its graph);
 * float32-nchw normalises like the other float models.
 */
export interface OcrTask {
  kind: 'ocr';
  session: SessionSpec;
  live: LiveSet;
  pixels: Uint8Array;
  items: number;
  width: number;
  height: number;
  channels: 1 | 3;
  input: 'uint8-nhwc' | 'float32-nchw';
  norm: Normalisation;
  inputName: string;
  layout: OcrLayout;
  charset: OcrCharsetSpec;
}

export interface OcrReply {
  reads: TextRead[];
  tensorMs: number;
  inferMs: number;
  decodeMs: number;
}

export type WorkerTask = LoadTask | DetectTask | ClassifyTask | OcrTask;

export interface DetectReply {
  detections: RawDetection[];
  tensorMs: number;
  inferMs: number;
  decodeMs: number;
}

export interface ClassifyReply {
  classIndex: number;
  confidence: number;
  tensorMs: number;
  inferMs: number;
}
