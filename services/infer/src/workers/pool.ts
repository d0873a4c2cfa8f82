/**
 * Main-thread side of the onnxruntime worker pool (Piscina). Knows which sessions are
 * live so workers can drop evicted ones, and spreads a model load over every worker so
 * no request pays for a lazy session creation.
 */
import { Piscina } from 'piscina';
import type { ClassifyReply, ClassifyTask, DetectReply, DetectTask, LiveSet, LoadReply, LoadTask, OcrReply, OcrTask, SessionSpec } from './tasks.js';

export interface PoolOptions {
  workers: number;
}

type WithoutLive<T> = T extends unknown ? Omit<T, 'live'> : never;

export class InferencePool {
  readonly workers: number;
  private readonly piscina: Piscina;
  private live: LiveSet = { epoch: 0, keys: [] };
  private readonly liveKeys = new Set<string>();
  private started = false;

  constructor(options: PoolOptions) {
    this.workers = options.workers;
    this.piscina = new Piscina({
      filename: new URL('./onnx-worker.js', import.meta.url).href,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
    });
  }

  /** Resolves once every worker thread is up (readiness). */
  async start(): Promise<void> {
    if (this.started) return;
    await new Promise<void>((resolve) => {
      if (this.piscina.threads.length >= this.workers) return resolve();
      this.piscina.once('ready', () => resolve());
    });
    this.started = true;
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** Tasks waiting for a free worker. */
  get queueSize(): number {
    return this.piscina.queueSize;
  }

  private async submit<R>(task: WithoutLive<LoadTask | DetectTask | ClassifyTask | OcrTask>): Promise<R> {
    return (await this.piscina.run({ ...task, live: this.live })) as R;
  }

  addSessions(keys: string[]): void {
    keys.forEach((k) => this.liveKeys.add(k));
    this.live = { epoch: this.live.epoch + 1, keys: [...this.liveKeys] };
  }

  removeSessions(keys: string[]): void {
    keys.forEach((k) => this.liveKeys.delete(k));
    this.live = { epoch: this.live.epoch + 1, keys: [...this.liveKeys] };
  }

  /**
   * Creates (and warms) the session on every worker. Piscina cannot address a thread, so
   * load tasks are sent in rounds until each thread id has answered (a busy worker may take
   * two of a round); the first reply carries the model's input/output description.
   */
  async load(session: SessionSpec, spatialHint: [number, number]): Promise<LoadReply> {
    this.addSessions([session.key]);
    const seen = new Map<number, LoadReply>();
    for (let round = 0; round < 4 && seen.size < this.workers; round++) {
      const missing = Math.max(1, this.workers - seen.size);
      const replies = await Promise.all(Array.from({ length: missing }, () => this.submit<LoadReply>({ kind: 'load', session, spatialHint })));
      for (const r of replies) seen.set(r.threadId, r);
    }
    return [...seen.values()][0]!;
  }

  detect(task: WithoutLive<DetectTask>): Promise<DetectReply> {
    return this.submit<DetectReply>(task);
  }

  classify(task: WithoutLive<ClassifyTask>): Promise<ClassifyReply> {
    return this.submit<ClassifyReply>(task);
  }

  ocr(task: WithoutLive<OcrTask>): Promise<OcrReply> {
    return this.submit<OcrReply>(task);
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
