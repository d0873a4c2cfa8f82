/**
 * The result tree of a pipeline run, as the infer API returns it, and the interface
 * between the pipeline executor and the action layer.
 */
import type { Action, PipelineNode, PostgresConfig, RedisConfig, InitialRecordConfig } from '@detector-worker/shared/pipeline/schema';
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

export type BranchResult = ClassificationResult | DetectionNodeResult;
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

/** The image an action may crop regions from; encoding happens only when an action asks. */
export interface ActionImage {
  width: number;
  height: number;
  /** Encodes the box (full image when undefined) as jpeg/png. */
  encode(box: Box | undefined, format: 'jpeg' | 'png', quality: number): Promise<Buffer>;
}

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

/** Branch results of a detection node; a classification result has none. */
export function branchResultsOf(result: BranchResult): Record<string, BranchResult> {
  const b = (result as Partial<DetectionNodeResult>).branch_results;
  return b && typeof b === 'object' ? b : {};
}
