/**
 * The infer service's parts and their lifecycle: worker pool, model registry, action
 * runner and pipeline executor. The HTTP layer only translates requests into `infer()`.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '@detector-worker/shared/logging';
import type { TrackingConfig } from '@detector-worker/shared/pipeline/schema';
import type { InferConfig } from './config.js';
import { createActionRunner } from './actions/runner.js';
import { FrameImage, type RawRgb } from './images/frame-image.js';
import { ModelRegistry, type RegistryOptions } from './models/registry.js';
import { cmsDetection, type CmsDetection } from './pipeline/cms-detection.js';
import { displayIdOf } from './pipeline/event-context.js';
import { PipelineExecutor, type RunOptions } from './pipeline/executor.js';
import type { ActionRunner, NodeTimings } from './pipeline/ports.js';
import type { PoolModel } from './workers/pool-model.js';
import { PoolNodeRunner } from './workers/pool-runner.js';
import type { ActionOutcome, BranchResult, RequestContext } from './pipeline/types.js';
import { InferencePool } from './workers/pool.js';
import { coded } from './error-codes.js';

export interface InferTimings {
  /** Reading the image header and validating it (a raw RGB body: its length only). */
  decode: number;
  /** Waiting for the pipeline (0 when it was loaded). */
  modelWait: number;
  /** Resize/letterbox + tensor building, summed over nodes. */
  preprocess: number;
  /** session.run + output decoding, summed over nodes. */
  inference: number;
  nodes: Record<string, NodeTimings>;
  actions: number;
  total: number;
}

/** The answer of one infer request; its wire shape is InferAnswerSchema in the shared contract. */
export interface InferAnswer {
  modelId: string;
  detection: CmsDetection | null;
  result: BranchResult | null;
  actions: ActionOutcome[];
  timings: InferTimings;
  /** The root node's tracking settings, for the relay. */
  tracking?: TrackingConfig;
  /** The root detector's input size: larger detect-stage images only cost decoding. */
  modelInput?: { width: number; height: number };
}

/** One request's place in the in-flight count; release() is idempotent. */
export interface Admission {
  release(): void;
}

export class InferService {
  readonly pool: InferencePool;
  readonly registry: ModelRegistry;
  readonly actions: ActionRunner;
  private readonly executor: PipelineExecutor<PoolModel>;
  private readonly runner: PoolNodeRunner;
  private inFlightRequests = 0;

  constructor(
    readonly config: InferConfig,
    readonly logger: Logger,
    deps: { actions?: ActionRunner } = {},
  ) {
    this.pool = new InferencePool({ workers: config.workers });
    this.actions =
      deps.actions ??
      createActionRunner({
        logger: logger.child({ component: 'actions' }),
        retry: { maxQueued: config.actionRetryMaxQueued, baseDelayMs: config.actionRetryBaseMs, maxDelayMs: config.actionRetryMaxMs },
      });
    // The registry spreads these into downloadArchive(), the deadline included, though its option type does not list it.
    const download: RegistryOptions['download'] = {
      allowFileUrls: config.allowFileUrls,
      allowedHosts: config.modelUrlAllow,
      maxBytes: config.downloadMaxBytes,
      connectTimeoutMs: config.downloadConnectTimeoutMs,
      bodyTimeoutMs: config.downloadBodyTimeoutMs,
      deadlineMs: config.downloadTimeoutMs,
    };
    this.registry = new ModelRegistry(
      {
        cacheDir: config.cacheDir,
        intraOpThreads: config.intraOpThreads,
        maxModels: config.maxModels,
        maxModelBytes: config.maxModelBytes,
        failedRetryMs: config.failedRetryMs,
        download,
        archive: { maxEntries: config.archiveMaxEntries, maxUncompressedBytes: config.archiveMaxBytes },
      },
      this.pool,
      this.actions,
      logger.child({ component: 'models' }),
    );
    this.runner = new PoolNodeRunner(this.pool);
    this.executor = new PipelineExecutor({ runner: this.runner, actions: this.actions, logger: logger.child({ component: 'pipeline' }) });
  }

  async start(): Promise<void> {
    await this.pool.start();
  }

  private draining = false;

  get ready(): boolean {
    return this.pool.isStarted && !this.draining;
  }

  /** Graceful shutdown, first step: stop being ready and refuse new inference. */
  drain(): void {
    this.draining = true;
  }

  /** Requests being served right now (for the in-flight metric and backpressure). */
  get inFlight(): number {
    return this.inFlightRequests;
  }

  /**
   * Backpressure: refuse before doing any work when more requests are in flight than the
   * workers can run plus the allowed queue. The slot is taken synchronously, so a burst cannot
   * slip past the bound while earlier requests are still uploading or decoding; the HTTP layer
   * takes it before reading the body and releases it when the response closes, however it ends.
   */
  admit(): Admission {
    if (this.draining) throw coded('SHUTTING_DOWN', 'this instance is shutting down; retry on another', { retryAfterSeconds: 1 });
    const limit = this.pool.workers + this.config.maxQueue;
    if (this.inFlightRequests >= limit) {
      throw coded('OVERLOADED', `inference queue is full (${this.inFlightRequests} requests in flight, limit ${limit}); retry later`, { retryAfterSeconds: 1 });
    }
    this.inFlightRequests++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlightRequests--;
      },
    };
  }

  /**
   * Runs the pipeline; admits the request itself unless the caller already holds a slot. The
   * image is encoded bytes (JPEG, PNG, WebP) or raw RGB pixels with their declared size.
   */
  async infer(modelId: string, image: Buffer | RawRgb, modelUrl: string | undefined, request: RequestContext, admission?: Admission, options: RunOptions = {}): Promise<InferAnswer> {
    const t0 = performance.now();
    const own = admission ? undefined : this.admit();
    try {
      const frame = Buffer.isBuffer(image) ? await FrameImage.open(image, this.config.maxImagePixels) : FrameImage.openRaw(image, this.config.maxImagePixels);
      const t1 = performance.now();
      const lease = await this.registry.acquire(modelId, modelUrl);
      const t2 = performance.now();
      try {
        const run = await this.executor.run(lease.pipeline.key, lease.pipeline.root, frame, request, options);
        const nodes = Object.values(run.nodes);
        const preprocess = nodes.reduce((s, n) => s + n.preprocess, 0);
        const inference = nodes.reduce((s, n) => s + n.inference, 0);
        const actionsMs = run.actions.reduce((s, a) => s + (a.durationMs ?? 0), 0);
        const context: Record<string, unknown> = {
          camera_id: request.subscriptionIdentifier ?? null,
          display_id: displayIdOf(request),
          session_id: run.result && 'session_id' in run.result ? run.result.session_id : (request.sessionId ?? null),
        };
        const total = performance.now() - t0;
        return {
          modelId,
          // The detect stage feeds the relay's tracker; only a full run produces a CMS detection.
          detection: options.stage === 'detect' ? null : cmsDetection(lease.pipeline.file.cmsDetection, run.result, context),
          result: run.result,
          ...(lease.pipeline.file.pipeline.tracking ? { tracking: lease.pipeline.file.pipeline.tracking } : {}),
          modelInput: { width: lease.pipeline.root.model.fit.width, height: lease.pipeline.root.model.fit.height },
          actions: run.actions,
          timings: { decode: ms(t1 - t0), modelWait: ms(t2 - t1), preprocess: ms(preprocess), inference: ms(inference), nodes: roundNodes(run.nodes), actions: ms(actionsMs), total: ms(total) },
        };
      } finally {
        lease.release();
      }
    } finally {
      own?.release();
    }
  }

  async close(): Promise<void> {
    await this.registry.close();
    await this.actions.close();
    await this.pool.close();
  }
}

function ms(v: number): number {
  return Math.round(v * 100) / 100;
}

function roundNodes(nodes: Record<string, NodeTimings>): Record<string, NodeTimings> {
  const out: Record<string, NodeTimings> = {};
  for (const [k, v] of Object.entries(nodes)) out[k] = { preprocess: ms(v.preprocess), inference: ms(v.inference) };
  return out;
}
