/**
 * What the pipeline needs from outside, and nothing more: an image it can crop and encode, a
 * runner for a node's model, a loader that says what a node's model is, and a runner for
 * actions. service.ts injects the implementations (workers/ for models, actions/ for
 * actions, images/ for the frame), the way a fastify plugin declares what it needs and gets
 * it handed in. Tests inject fakes.
 */
import type { Action, InitialRecordConfig, PipelineNode, PostgresConfig, RedisConfig } from '@detector-worker/shared/pipeline/schema';
import type { Box, TextRead } from '../inference/types.js';
import type { PreparedNode } from './node.js';
import type { ActionEvent, ActionOutcome, Detection } from './types.js';

/** The image an action may crop regions from; encoding happens only when an action asks. */
export interface ActionImage {
  width: number;
  height: number;
  /** Encodes the box (full image when undefined) as jpeg/png. */
  encode(box: Box | undefined, format: 'jpeg' | 'png', quality: number): Promise<Buffer>;
}

/** How a branch's crop is cut: widened, and flattened when the detector gave four corners. */
export interface CropOptions {
  /** Share of the box's width/height added on each side (clamped to the image). */
  margin?: number;
  /** Corners top-left, top-right, bottom-right, bottom-left: the quad is warped to a rectangle. */
  corners?: ReadonlyArray<readonly [number, number]>;
}

/** The image operations the walk needs (FrameImage implements them). */
export interface PipelineImage extends ActionImage {
  crop(box: Box, options?: CropOptions): Promise<PipelineImage>;
}

export interface NodeTimings {
  preprocess: number;
  inference: number;
}

/** Runs one node's model on an image. `M` is the runner's own handle for the loaded model. */
export interface NodeRunner<M = unknown, I extends PipelineImage = PipelineImage> {
  /** Detections kept by the node's class filter, confidence >= threshold, boxes in the image's pixels. */
  /** `wholeFrameLater`: the walk will crop or save from this image (decode it fully once). */
  detect(node: PreparedNode<M>, image: I, minConfidence: number, wholeFrameLater?: boolean): Promise<{ detections: Detection[]; timings: NodeTimings }>;
  classify(node: PreparedNode<M>, image: I): Promise<{ className: string; confidence: number; timings: NodeTimings }>;
  /** Text of the whole image (an OCR node's crop). */
  read(node: PreparedNode<M>, image: I): Promise<{ read: TextRead; timings: NodeTimings }>;
}

/** What a node's model turned out to be when it was loaded. */
export interface LoadedModel<M = unknown> {
  task: 'detect' | 'classify' | 'ocr';
  /** Class names, in the model's output order. */
  classNames: string[];
  /** Size of the model file. */
  bytes: number;
  /** The runner's handle (session, decoder, input size); opaque to the pipeline. */
  model: M;
}

/** Loads a node's model at pipeline load time; anything that would fail per frame fails here. */
export interface NodeModelLoader<M = unknown> {
  load(node: PipelineNode, path: string): Promise<LoadedModel<M>>;
}

export interface PipelineConnections {
  redis?: RedisConfig;
  postgresql?: PostgresConfig;
  initialRecord?: InitialRecordConfig;
}

/**
 * What the executor needs from the action layer. Implementations never throw: every
 * failure becomes an outcome with status `failed` and a reason.
 */
export interface ActionRunner {
  /** Called once per loaded pipeline (may open shared connections lazily). */
  attach(pipelineKey: string, connections: PipelineConnections): void;
  /** Called when a pipeline is evicted; closes connections nobody else uses. */
  detach(pipelineKey: string): Promise<void>;
  /** Initial record (original: Car + Frontal -> car_frontal_info); may set event.context.session_id. */
  initialRecord(event: ActionEvent): Promise<ActionOutcome | null>;
  run(actions: readonly Action[], event: ActionEvent): Promise<ActionOutcome[]>;
  close(): Promise<void>;
}
