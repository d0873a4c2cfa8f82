/**
 * Lifecycle shared by every camera reader: connect, deliver only the latest frame, notice
 * stalls (no frame, or the same frame over and over) with a watchdog, and reconnect with
 * exponential backoff — forever when max_retries is -1. Subclasses only open and close the
 * underlying stream (an ffmpeg child, an HTTP poll loop).
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { Logger } from '@detector-worker/shared/logging';
import { backoffDelayMs, mayRetry } from './backoff.js';
import type { CameraSource, Frame } from './frame.js';

export interface ReaderOptions {
  reconnectIntervalSec: number;
  maxBackoffSec: number;
  maxRetries: number;
  watchdogMs: number;
  identicalFrameLimit: number;
}

export interface ReaderStats {
  framesRead: number;
  reconnects: number;
  online: boolean;
  lastFrameAt: number | null;
  state: 'connecting' | 'running' | 'waiting' | 'failed' | 'stopped';
  lastError: string | null;
}

export interface CameraReaderEvents {
  frame: [Frame];
  online: [boolean];
}

export abstract class CameraReader extends EventEmitter<CameraReaderEvents> {
  latest: Frame | undefined;
  readonly stats: ReaderStats = { framesRead: 0, reconnects: 0, online: false, lastFrameAt: null, state: 'stopped', lastError: null };
  private failures = 0;
  private openedAt = 0;
  private framesSinceOpen = 0;
  private lastDigest = '';
  private repeats = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = true;
  /** Frames per second the subscriptions need (max over them). */
  protected rate: number;

  constructor(
    readonly source: CameraSource,
    protected readonly options: ReaderOptions,
    protected readonly logger: Logger,
    rate: number,
  ) {
    super();
    this.rate = rate;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
    const tick = Math.max(50, Math.min(1000, this.options.watchdogMs / 4));
    this.watchdog = setInterval(() => this.checkStall(), tick);
    this.watchdog.unref();
  }

  /** Stops reading; resolves once the underlying stream (an ffmpeg child) is gone. */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    const closed = this.close();
    this.stats.state = 'stopped';
    this.setOnline(false);
    this.removeAllListeners();
    return Promise.resolve(closed);
  }

  /** The needed rate changed (a subscription joined or left). */
  setRate(fps: number): void {
    if (Math.abs(fps - this.rate) < 1e-6) return;
    const before = this.rate;
    this.rate = fps;
    if (this.rateNeedsRestart(before, fps) && !this.stopped && this.stats.state === 'running') {
      this.logger.info({ from: before, to: fps }, 'camera rate changed; reopening');
      this.restart('rate changed', false);
    }
  }

  /** Whether a new rate needs the stream reopened (ffmpeg decodes at a fixed rate). */
  protected rateNeedsRestart(_before: number, _after: number): boolean {
    return false;
  }

  /** Opens the stream; frames go to deliver(), the end to ended(). */
  protected abstract open(): void;
  /** Closes the stream without reporting it as ended. */
  protected abstract close(): void | Promise<void>;

  private connect(): void {
    if (this.stopped) return;
    this.stats.state = 'connecting';
    this.openedAt = Date.now();
    this.framesSinceOpen = 0;
    try {
      this.open();
      this.stats.state = 'running';
    } catch (err) {
      this.ended(err instanceof Error ? err.message : String(err));
    }
  }

  /** Video streams that repeat one picture are frozen; a still scene's snapshots may be identical. */
  protected readonly detectsRepeats: boolean = true;

  protected deliver(jpeg: Buffer): void {
    if (this.stopped) return;
    if (this.detectsRepeats) {
      const digest = createHash('sha1').update(jpeg).digest('base64');
      this.repeats = digest === this.lastDigest ? this.repeats + 1 : 0;
      this.lastDigest = digest;
      if (this.repeats >= this.options.identicalFrameLimit) {
        this.restart(`the same frame ${this.repeats + 1} times in a row`, true);
        return;
      }
    }
    this.failures = 0;
    this.framesSinceOpen++;
    this.stats.framesRead++;
    this.stats.lastFrameAt = Date.now();
    const frame: Frame = { jpeg, capturedAt: new Date(), seq: this.stats.framesRead };
    this.latest = frame;
    this.setOnline(true);
    this.emit('frame', frame);
  }

  /** The stream ended on its own (error, exit, refused): reconnect after a backoff. */
  protected ended(reason: string): void {
    if (this.stopped) return;
    void this.close();
    this.setOnline(false);
    this.stats.lastError = reason;
    this.failures++;
    if (!mayRetry(this.failures, this.options.maxRetries)) {
      this.stats.state = 'failed';
      this.logger.error({ reason, failures: this.failures }, 'camera failed; max_retries reached, giving up');
      return;
    }
    const delay = backoffDelayMs(this.failures - 1, this.options.reconnectIntervalSec, this.options.maxBackoffSec);
    this.stats.state = 'waiting';
    this.logger.warn({ reason, retryInMs: delay, failures: this.failures }, 'camera stream ended; reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.stats.reconnects++;
      this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  /** Reopens the stream; as a failure it counts towards backoff and max_retries. */
  protected restart(reason: string, asFailure: boolean): void {
    if (asFailure) {
      this.ended(reason);
      return;
    }
    void this.close();
    this.connect();
  }

  /** Called on every watchdog tick while running (subclasses check their own pacing). */
  protected tick(): void {}

  /** A slow rate (one frame a minute) is no stall: allow three frame intervals at least. */
  private stallLimitMs(): number {
    return Math.max(this.options.watchdogMs, 3000 / this.rate);
  }

  private checkStall(): void {
    if (this.stopped || this.stats.state !== 'running') return;
    const since = this.stats.lastFrameAt && this.framesSinceOpen > 0 ? this.stats.lastFrameAt : this.openedAt;
    const silent = Date.now() - since;
    if (silent > this.stallLimitMs()) {
      this.restart(`no frame for ${silent} ms (watchdog)`, true);
      return;
    }
    this.tick();
  }

  private setOnline(online: boolean): void {
    if (this.stats.online === online) return;
    this.stats.online = online;
    this.emit('online', online);
  }
}
