/**
 * The result tree of a pipeline run, as the infer API returns it, and the event a detection
 * node hands to its actions.
 */
import type { Action, PipelineNode } from '@detector-worker/shared/pipeline/schema';
import type { ActionImage } from './ports.js';
import type { Box } from '../inference/types.js';

export interface Detection {
  class: string;
  confidence: number;
  bbox: Box;
  /** Track id; this stateless service has no tracker, so always null. */
  id: number | null;
  keypoints?: Array<[number, number]>;
}

export interface Region {
  bbox: Box;
  confidence: number;
  /** Corners of the detection (plate detectors), for a rectified crop. */
  keypoints?: Array<[number, number]>;
}

/** A classification node's answer: top-1 plus alias fields (brand / body_type / color / outputField). */
export interface ClassificationResult {
  class: string;
  confidence: number;
  id: null;
  [field: string]: unknown;
}

export interface DetectionNodeResult extends Detection {
  detections: Detection[];
  regions: Record<string, Region>;
  branch_results: Record<string, BranchResult>;
  session_id: string | null;
}

/**
 * An OCR node's answer. `class` mirrors `text` so templates and the flat detection treat it
 * like a classification; a read that fails the node's checks keeps its characters for
 * debugging but has `text` and `class` null and says why in `reason`.
 */
export interface OcrResult {
  class: string | null;
  /** The weakest kept character's confidence (0 when nothing was read). */
  confidence: number;
  text: string | null;
  characters: Array<{ char: string; confidence: number }>;
  id: null;
  reason?: string;
}

export type BranchResult = ClassificationResult | DetectionNodeResult | OcrResult;

/** Whether a branch result is an OCR node's. */
export function isOcrResult(result: BranchResult): result is OcrResult {
  return Array.isArray((result as Partial<OcrResult>).characters) && 'text' in result;
}
export type NodeResult = BranchResult;

export type ActionStatus = 'ok' | 'skipped' | 'failed';

export interface ActionOutcome {
  /** modelId of the node whose action this is. */
  node: string;
  type: Action['type'] | 'initial_record';
  status: ActionStatus;
  reason?: string;
  /** e.g. the Redis key written, the channel published to, the table upserted. */
  target?: string;
  durationMs?: number;
}

/** Template context of one detection event (spec: "Action Context & Dynamic Keys"). */
export type EventContext = Record<string, string | number | boolean | null>;

/** Per-request values supplied by the caller (relay or curl). */
export interface RequestContext {
  subscriptionIdentifier?: string;
  displayId?: string;
  sessionId?: string;
  requestId?: string;
  /** ISO-8601 capture time of the frame, when the caller knows it. */
  capturedAt?: string;
}

/** Everything about one node's detection event that actions need. */
export interface ActionEvent {
  pipelineKey: string;
  node: PipelineNode;
  /** The node's primary (highest-confidence) detection. */
  detection: Detection;
  regions: Record<string, Region>;
  /** Mutable: actions add image_key, the initial record sets session_id. */
  context: EventContext;
  image: ActionImage;
  /** Filled before parallelActions run: branch modelId -> result. */
  branchResults: Record<string, BranchResult>;
  request: RequestContext;
}

/** Branch results of a detection node; a classification result has none. */
export function branchResultsOf(result: BranchResult): Record<string, BranchResult> {
  const b = (result as Partial<DetectionNodeResult>).branch_results;
  return b && typeof b === 'object' ? b : {};
}
