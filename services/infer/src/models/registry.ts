/**
 * Loaded pipelines keyed by modelId. Concurrent requests for a model that is not loaded
 * share one download and one load (single flight); a load never blocks requests for other
 * models; the same modelId with another modelUrl loads the new archive and swaps it in;
 * least-recently-used pipelines are evicted past the configured count or memory budget,
 * once no request is using them.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { redactUrl, type Logger } from '@detector-worker/shared/logging';
import type { ActionRunner } from '../pipeline/ports.js';
import type { InferencePool } from '../workers/pool.js';
import { loadRunnablePipeline, type RunnablePipeline } from './load-pipeline.js';
import { downloadArchive } from './download.js';
import { coded } from '../error-codes.js';

export type ModelState = 'loading' | 'ready' | 'failed';

export interface RegistryOptions {
  cacheDir: string;
  intraOpThreads: number;
  maxModels: number;
  /** Estimated bytes of loaded models; 0 = no budget. */
  maxModelBytes: number;
  failedRetryMs: number;
  download: { allowFileUrls: boolean; allowedHosts: string[]; maxBytes: number; connectTimeoutMs: number; bodyTimeoutMs: number; deadlineMs?: number };
  archive: { maxEntries: number; maxUncompressedBytes: number };
}

export interface ModelInfo {
  modelId: string;
  state: ModelState;
  modelUrl: string;
  error?: { code: string; message: string; details?: Record<string, unknown> };
  progress?: { receivedBytes: number; totalBytes: number | null; percent: number | null };
  archiveBytes?: number;
  modelBytes?: number;
  estimatedMemoryBytes?: number;
  loadMs?: number;
  loadedAt?: string;
  lastUsedAt?: string;
  nodes?: Array<{ modelId: string; task: string; format: string; input: [number, number]; classes: number }>;
  inUse: number;
}

interface ModelRecord {
  modelId: string;
  modelUrl: string;
  generation: number;
  state: ModelState;
  pipeline?: RunnablePipeline;
  loading?: Promise<RunnablePipeline>;
  error?: CodedError;
  failedAt?: number;
  progress?: { received: number; total: number | null };
  archiveBytes?: number;
  loadMs?: number;
  loadedAt?: number;
  lastUsed: number;
  inUse: number;
  evicted: boolean;
  /** The record this one replaces once it is ready (reload with a new URL). */
  previous?: ModelRecord;
}

export interface RegistryStats {
  downloads: number;
  loads: number;
  loadFailures: number;
  evictions: number;
}

/** A pipeline lent to one request; release() lets eviction proceed. */
export interface PipelineLease {
  pipeline: RunnablePipeline;
  release(): void;
}

const MODEL_ID = /^[A-Za-z0-9_.-]{1,128}$/;
/** Rough resident size of a model per worker relative to its file (weights + arenas). */
const MEMORY_FACTOR = 2;

export function validateModelId(modelId: string): void {
  if (!MODEL_ID.test(modelId) || modelId === '.' || modelId === '..') {
    throw coded('MODEL_ID_INVALID', 'modelId must be 1-128 characters of letters, digits, "_", "-" or "."');
  }
}

export class ModelRegistry {
  private readonly records = new Map<string, ModelRecord>();
  private generation = 0;
  readonly stats: RegistryStats = { downloads: 0, loads: 0, loadFailures: 0, evictions: 0 };
  /** Observer of successful load durations (metrics). */
  onLoad: ((seconds: number) => void) | undefined;

  constructor(
    private readonly options: RegistryOptions,
    private readonly pool: InferencePool,
    private readonly actions: ActionRunner,
    private readonly logger: Logger,
  ) {}

  /**
   * The ready pipeline for modelId, loading it from modelUrl first when needed.
   * Every caller must release() the lease.
   */
  async acquire(modelId: string, modelUrl?: string): Promise<PipelineLease> {
    validateModelId(modelId);
    const record = this.recordFor(modelId, modelUrl);
    record.inUse++;
    try {
      const pipeline = record.pipeline ?? (await record.loading!);
      record.lastUsed = Date.now();
      let released = false;
      return {
        pipeline,
        release: () => {
          if (released) return;
          released = true;
          record.inUse--;
          if (record.evicted && record.inUse === 0) void this.dispose(record);
        },
      };
    } catch (err) {
      record.inUse--;
      throw err;
    }
  }

  /** PUT semantics: load (or reload when the URL changed) and wait until ready. */
  async load(modelId: string, modelUrl: string): Promise<ModelInfo> {
    const lease = await this.acquire(modelId, modelUrl);
    lease.release();
    return this.info(modelId)!;
  }

  private recordFor(modelId: string, modelUrl: string | undefined): ModelRecord {
    const current = this.records.get(modelId);
    if (current && (modelUrl === undefined || modelUrl === current.modelUrl)) {
      if (current.state !== 'failed') return current;
      if (modelUrl === undefined || Date.now() - (current.failedAt ?? 0) < this.options.failedRetryMs) throw current.error!;
    }
    if (modelUrl === undefined) {
      throw coded('MODEL_NOT_FOUND', `model ${modelId} is not loaded: pass modelUrl (query or X-Model-Url header) or PUT /v1/models/${modelId}`);
    }
    return this.startLoad(modelId, modelUrl, current);
  }

  private startLoad(modelId: string, modelUrl: string, previous: ModelRecord | undefined): ModelRecord {
    const record: ModelRecord = { modelId, modelUrl, generation: ++this.generation, state: 'loading', lastUsed: Date.now(), inUse: 0, evicted: false };
    // Keep serving the previous archive while the new one loads (reload with a new URL).
    if (previous && previous.state === 'ready') record.previous = previous;
    this.records.set(modelId, record);
    record.loading = this.loadRecord(record).then(
      (pipeline) => {
        record.pipeline = pipeline;
        record.state = 'ready';
        record.loading = undefined;
        if (record.previous) this.evictRecord(record.previous, 'replaced');
        record.previous = undefined;
        this.enforceBudget(record);
        return pipeline;
      },
      (err: unknown) => {
        const failure = err instanceof CodedError ? err : coded('MODEL_LOAD_FAILED', errorMessage(err));
        record.state = 'failed';
        record.error = failure;
        record.failedAt = Date.now();
        record.loading = undefined;
        this.stats.loadFailures++;
        this.logger.warn({ modelId, modelUrl: redactUrl(modelUrl), code: failure.code, reason: failure.message }, 'model load failed');
        // The previous archive keeps serving after a failed reload.
        if (record.previous && !record.previous.evicted) this.records.set(modelId, record.previous);
        void this.cleanupFiles(record);
        throw failure;
      },
    );
    // Avoid an unhandled rejection when nobody awaits (the callers get it from acquire).
    record.loading.catch(() => undefined);
    return record;
  }

  private dirs(record: ModelRecord): { archive: string; extracted: string; key: string } {
    const key = `${record.modelId}@${record.generation}`;
    return { key, archive: join(this.options.cacheDir, 'downloads', `${key}.mpta`), extracted: join(this.options.cacheDir, 'pipelines', key) };
  }

  private async loadRecord(record: ModelRecord): Promise<RunnablePipeline> {
    const t0 = performance.now();
    const { key, archive, extracted } = this.dirs(record);
    const log = this.logger.child({ modelId: record.modelId, modelUrl: redactUrl(record.modelUrl) });
    await mkdir(join(this.options.cacheDir, 'downloads'), { recursive: true });
    await mkdir(join(this.options.cacheDir, 'pipelines'), { recursive: true });
    this.stats.downloads++;
    log.info('model download started');
    let lastLogged = -1;
    const { bytes } = await downloadArchive(record.modelUrl, archive, {
      ...this.options.download,
      onProgress: (received, total) => {
        record.progress = { received, total };
        const percent = total ? Math.floor((received / total) * 10) * 10 : -1;
        if (percent > lastLogged) {
          lastLogged = percent;
          log.info({ receivedBytes: received, totalBytes: total, percent: total ? percent : null }, 'model download progress');
        }
      },
    });
    record.archiveBytes = bytes;
    this.stats.loads++;
    const { archive: loaded, pipeline } = await loadRunnablePipeline(key, archive, extracted, this.pool, { archive: this.options.archive, intraOpThreads: this.options.intraOpThreads });
    this.actions.attach(key, {
      ...(loaded.pipeline.redis ? { redis: loaded.pipeline.redis } : {}),
      ...(loaded.pipeline.postgresql ? { postgresql: loaded.pipeline.postgresql } : {}),
      ...(loaded.pipeline.initialRecord ? { initialRecord: loaded.pipeline.initialRecord } : {}),
    });
    record.loadMs = performance.now() - t0;
    record.loadedAt = Date.now();
    this.onLoad?.(record.loadMs / 1000);
    log.info({ loadMs: Math.round(record.loadMs), nodes: pipeline.sessionKeys.length, archiveBytes: bytes }, 'model ready');
    await rm(archive, { force: true });
    return pipeline;
  }

  private estimatedBytes(record: ModelRecord): number {
    return (record.pipeline?.modelBytes ?? 0) * this.pool.workers * MEMORY_FACTOR;
  }

  private enforceBudget(keep: ModelRecord): void {
    const ready = () => [...this.records.values()].filter((r) => r.state === 'ready' && !r.evicted);
    const overCount = () => ready().length > this.options.maxModels;
    const overBytes = () => this.options.maxModelBytes > 0 && ready().reduce((s, r) => s + this.estimatedBytes(r), 0) > this.options.maxModelBytes;
    while (overCount() || overBytes()) {
      const victim = ready()
        .filter((r) => r !== keep)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) break;
      this.evictRecord(victim, overCount() ? 'model count limit' : 'memory budget');
    }
  }

  private evictRecord(record: ModelRecord, reason: string): void {
    if (record.evicted) return;
    record.evicted = true;
    this.stats.evictions++;
    if (this.records.get(record.modelId) === record) this.records.delete(record.modelId);
    this.logger.info({ modelId: record.modelId, reason }, 'model evicted');
    if (record.inUse === 0) void this.dispose(record);
  }

  private async dispose(record: ModelRecord): Promise<void> {
    const { key } = this.dirs(record);
    if (record.pipeline) this.pool.removeSessions(record.pipeline.sessionKeys);
    await this.actions.detach(key).catch(() => undefined);
    await this.cleanupFiles(record);
  }

  private async cleanupFiles(record: ModelRecord): Promise<void> {
    const { archive, extracted } = this.dirs(record);
    await rm(archive, { force: true }).catch(() => undefined);
    await rm(extracted, { force: true, recursive: true }).catch(() => undefined);
  }

  /** DELETE semantics. A pipeline in use by requests is released when they finish. */
  evict(modelId: string): boolean {
    validateModelId(modelId);
    const record = this.records.get(modelId);
    if (!record) return false;
    if (record.state === 'loading') {
      // Let the load finish, then drop it.
      record.loading?.then(() => this.evictRecord(record, 'deleted')).catch(() => undefined);
      this.records.delete(modelId);
      return true;
    }
    if (record.state === 'failed') {
      this.records.delete(modelId);
      return true;
    }
    this.evictRecord(record, 'deleted');
    return true;
  }

  info(modelId: string): ModelInfo | undefined {
    const r = this.records.get(modelId);
    return r ? this.describe(r) : undefined;
  }

  list(): ModelInfo[] {
    return [...this.records.values()].map((r) => this.describe(r));
  }

  get loadedCount(): number {
    return [...this.records.values()].filter((r) => r.state === 'ready').length;
  }

  private describe(r: ModelRecord): ModelInfo {
    const info: ModelInfo = { modelId: r.modelId, state: r.state, modelUrl: redactUrl(r.modelUrl), inUse: r.inUse };
    if (r.error) info.error = { code: r.error.code, message: r.error.message, ...(r.error.details ? { details: r.error.details } : {}) };
    if (r.progress) {
      const { received, total } = r.progress;
      info.progress = { receivedBytes: received, totalBytes: total, percent: total ? Math.round((received / total) * 1000) / 10 : null };
    }
    if (r.archiveBytes !== undefined) info.archiveBytes = r.archiveBytes;
    if (r.pipeline) {
      info.modelBytes = r.pipeline.modelBytes;
      info.estimatedMemoryBytes = this.estimatedBytes(r);
      const nodes: NonNullable<ModelInfo['nodes']> = [];
      const walk = (n: RunnablePipeline['root']): void => {
        nodes.push({ modelId: n.spec.modelId, task: n.task, format: n.model.format, input: [n.model.fit.width, n.model.fit.height], classes: n.classNames.length });
        n.branches.forEach(walk);
      };
      walk(r.pipeline.root);
      info.nodes = nodes;
    }
    if (r.loadMs !== undefined) info.loadMs = Math.round(r.loadMs);
    if (r.loadedAt !== undefined) info.loadedAt = new Date(r.loadedAt).toISOString();
    info.lastUsedAt = new Date(r.lastUsed).toISOString();
    return info;
  }

  async close(): Promise<void> {
    for (const r of this.records.values()) await this.cleanupFiles(r);
    this.records.clear();
  }
}
