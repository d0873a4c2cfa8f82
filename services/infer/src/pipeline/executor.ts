/**
 * Walks a prepared pipeline over one image: detector, regions, initial record, actions,
 * triggered branches (cropped, concurrently when asked), then parallelActions. Model work
 * goes through a NodeRunner so the walk is tested with a fake runner.
 */
import type { Logger } from '@detector-worker/shared/logging';
import { buildEventContext } from './event-context.js';
import type { PreparedNode } from './node.js';
import type { ActionRunner, NodeRunner, NodeTimings, PipelineImage } from './ports.js';
import {
  bestRegions,
  focusedDetections,
  classificationResult,
  cropRegionFor,
  isBranchTriggered,
  ocrCropOptions,
  ocrResult,
  missingExpectedClasses,
  runBranchesInParallel,
  untriggeredAwaitedBranches,
} from './tree.js';
import type { ActionEvent, ActionOutcome, BranchResult, ClassificationResult, DetectionNodeResult, RequestContext } from './types.js';

/**
 * How much of the pipeline a request runs. `detect`: the root detector only (no initial
 * record, actions or branches), the cheap per-frame stage of a tracked camera. `full` (the
 * default): everything. `focus`: the box of the tracked vehicle a full run is for; only the
 * root detection matching it (and what lies inside it) counts.
 */
export interface RunOptions {
  stage?: 'detect' | 'full';
  focus?: readonly [number, number, number, number];
}

export interface PipelineRun {
  result: BranchResult | null;
  actions: ActionOutcome[];
  /** Per node modelId. */
  nodes: Record<string, NodeTimings>;
  /** Why the root produced nothing, when it did not (for logs and debugging). */
  reason?: string;
}

export interface ExecutorDeps<M = unknown> {
  runner: NodeRunner<M>;
  actions: ActionRunner;
  logger: Logger;
}

interface WalkState {
  pipelineKey: string;
  options: RunOptions;
  request: RequestContext;
  actions: ActionOutcome[];
  nodes: Record<string, NodeTimings>;
  reasons: string[];
}

export class PipelineExecutor<M = unknown> {
  constructor(private readonly deps: ExecutorDeps<M>) {}

  async run(pipelineKey: string, root: PreparedNode<M>, image: PipelineImage, request: RequestContext, options: RunOptions = {}): Promise<PipelineRun> {
    const state: WalkState = { pipelineKey, options, request, actions: [], nodes: {}, reasons: [] };
    const result = await this.runNode(root, image, state, true);
    return { result, actions: state.actions, nodes: state.nodes, ...(result ? {} : { reason: state.reasons[0] ?? 'nothing detected' }) };
  }

  private async runNode(node: PreparedNode<M>, image: PipelineImage, state: WalkState, isRoot = false): Promise<BranchResult | null> {
    if (node.task === 'classify') {
      const { className, confidence, timings } = await this.deps.runner.classify(node, image);
      state.nodes[node.spec.modelId] = timings;
      return classificationResult(node.spec, className, confidence) satisfies ClassificationResult;
    }
    if (node.task === 'ocr') {
      const { read, timings } = await this.deps.runner.read(node, image);
      state.nodes[node.spec.modelId] = timings;
      return ocrResult(node.spec, read);
    }

    // Root detections are filtered by the root's own minConfidence; a branch detector's too.
    // The detect stage stops after the detector: nothing will be cropped, so no full decode.
    const detectOnly = isRoot && state.options.stage === 'detect';
    const found = await this.deps.runner.detect(node, image, node.spec.minConfidence, node.decodeFullFrame && !detectOnly);
    state.nodes[node.spec.modelId] = found.timings;
    if (found.detections.length === 0) {
      state.reasons.push(`${node.spec.modelId}: no ${node.spec.triggerClasses.join('/')} at confidence >= ${node.spec.minConfidence}`);
      return null;
    }
    const focus = isRoot ? state.options.focus : undefined;
    const detections = focus ? focusedDetections(found.detections, focus) : found.detections;
    if (detections.length === 0) {
      state.reasons.push(`${node.spec.modelId}: nothing detected at the focus box [${focus!.join(', ')}]`);
      return null;
    }
    const regions = bestRegions(detections);
    // With a focus box the tracked vehicle is the primary detection, whatever else scores higher.
    const primary = focus ? detections[0]! : detections.reduce((a, b) => (b.confidence > a.confidence ? b : a));
    if (detectOnly) return { ...primary, detections, regions, branch_results: {}, session_id: null } satisfies DetectionNodeResult;
    const expected = missingExpectedClasses(node.spec, regions);
    if (!expected.satisfied) {
      state.reasons.push(`${node.spec.modelId}: none of the expected classes ${JSON.stringify(node.spec.expectedClasses)}`);
      return null;
    }
    if (expected.missing.length) this.deps.logger.debug({ node: node.spec.modelId, missing: expected.missing }, 'expected classes missing');
    const unmet = untriggeredAwaitedBranches(node.spec, regions);
    if (unmet.length) {
      state.reasons.push(`${node.spec.modelId}: aborted, awaited branches would not run: ${unmet.join(', ')}`);
      return null;
    }

    const event: ActionEvent = {
      pipelineKey: state.pipelineKey,
      node: node.spec,
      detection: primary,
      regions,
      context: buildEventContext({ detection: primary, request: state.request, node: node.spec.modelId }),
      image,
      branchResults: {},
      request: state.request,
    };
    const initial = await this.deps.actions.initialRecord(event);
    if (initial) state.actions.push(initial);
    if (node.spec.actions?.length) state.actions.push(...(await this.deps.actions.run(node.spec.actions, event)));

    event.branchResults = await this.runBranches(node, image, regions, state);
    if (node.spec.parallelActions?.length) state.actions.push(...(await this.deps.actions.run(node.spec.parallelActions, event)));

    const sessionId = event.context.session_id;
    const result: DetectionNodeResult = {
      ...primary,
      detections,
      regions,
      branch_results: event.branchResults,
      session_id: typeof sessionId === 'string' || typeof sessionId === 'number' ? String(sessionId) : null,
    };
    return result;
  }

  private async runBranches(node: PreparedNode<M>, image: PipelineImage, regions: DetectionNodeResult['regions'], state: WalkState): Promise<Record<string, BranchResult>> {
    const triggered = node.branches.filter((b) => isBranchTriggered(b.spec, regions));
    const results: Record<string, BranchResult> = {};
    const runOne = async (branch: PreparedNode<M>): Promise<void> => {
      try {
        let input = image;
        if (branch.spec.crop) {
          const region = cropRegionFor(branch.spec, regions);
          if (!region) {
            this.deps.logger.debug({ branch: branch.spec.modelId }, 'crop region missing, branch skipped');
            return;
          }
          input = await image.crop(region.bbox, ocrCropOptions(branch.spec, region));
        }
        const r = await this.runNode(branch, input, state);
        if (r) results[branch.spec.modelId] = r;
      } catch (err) {
        // A failing branch is left out; its siblings and parent carry on.
        this.deps.logger.warn({ branch: branch.spec.modelId, err }, 'branch failed');
      }
    };
    if (runBranchesInParallel(node.spec, triggered.map((b) => b.spec))) await Promise.all(triggered.map(runOne));
    else for (const b of triggered) await runOne(b);
    return results;
  }
}
