/**
 * A bounded FIFO of writes waiting for their server to come back. One queue per server:
 * writes are applied in the order they were made (the initial record before the upsert of
 * its session), and while a queue is not empty new writes for that server join its tail
 * instead of overtaking it. Backoff grows exponentially with consecutive failures and a
 * successful write resets it. What does not fit is refused, and the caller counts it.
 */
import { backoffDelayMs } from '@detector-worker/shared/backoff';
import type { Logger } from '@detector-worker/shared/logging';
import type { ActionOutcome } from '../pipeline/types.js';

export interface RetryJob {
  type: ActionOutcome['type'];
  node: string;
  target: string;
  /** Performs the write; throws when it did not happen. */
  run(): Promise<void>;
}

export interface RetryPolicy {
  /** Most writes waiting per server. */
  maxQueued: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface RetryQueueOptions extends RetryPolicy {
  /** The server, credentials removed (for logs). */
  label: string;
  logger: Logger;
  /** Whether the write may succeed later (server unreachable) or never will (bad SQL). */
  retryable(err: unknown): boolean;
  /** A log- and answer-safe message for an error. */
  describe(err: unknown): string;
  onApplied(job: RetryJob): void;
  onDropped(job: RetryJob, reason: string): void;
  /** Called whenever the queue becomes empty. */
  onIdle?(): void;
}

export class RetryQueue {
  private readonly items: RetryJob[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private failures = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: RetryQueueOptions) {}

  get size(): number {
    return this.items.length;
  }

  get capacity(): number {
    return this.opts.maxQueued;
  }

  /** Adds a write that just failed; false when the queue is full or closed (caller drops it). */
  push(job: RetryJob): boolean {
    if (this.closed || this.items.length >= this.opts.maxQueued) return false;
    this.items.push(job);
    // The write failed a moment ago: wait at least one backoff step before trying again.
    if (this.failures === 0) this.failures = 1;
    this.schedule();
    return true;
  }

  /** Try now (the server just came back), instead of waiting for the backoff timer. */
  kick(): void {
    if (this.closed || this.items.length === 0) return;
    this.clearTimer();
    void this.pump();
  }

  /** Resolves true once the queue is empty, false after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.items.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /** Stops retrying; every write still waiting is reported dropped. Returns how many. */
  close(reason = 'shutting down before the server came back'): number {
    this.closed = true;
    this.clearTimer();
    const left = this.items.splice(0);
    for (const job of left) this.opts.onDropped(job, reason);
    this.notifyIdle();
    return left.length;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer || this.pumping || this.closed) return;
    const delay = backoffDelayMs(this.failures, this.opts.baseDelayMs, this.opts.maxDelayMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pump();
    }, delay);
    // Pending retries alone must not keep a finished process alive; close() reports them.
    this.timer.unref();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters.splice(0);
    for (const w of waiters) w();
    if (!this.closed) this.opts.onIdle?.();
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    let stalled = false;
    try {
      while (this.items.length > 0 && !this.closed) {
        const job = this.items[0]!;
        try {
          await job.run();
        } catch (err) {
          if (this.closed) return;
          if (this.opts.retryable(err)) {
            this.failures++;
            stalled = true;
            this.opts.logger.debug({ server: this.opts.label, pending: this.items.length, failures: this.failures, err: this.opts.describe(err) }, 'retry failed, backing off');
            return;
          }
          this.items.shift();
          this.opts.onDropped(job, this.opts.describe(err));
          continue;
        }
        this.items.shift();
        this.failures = 0;
        this.opts.onApplied(job);
      }
    } finally {
      this.pumping = false;
      if (stalled && !this.closed) this.schedule();
      else if (this.items.length === 0) this.notifyIdle();
    }
  }
}
