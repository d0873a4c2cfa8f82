/**
 * Lifecycle shared by every camera reader: connect, deliver only the latest frame, notice
 * stalls (no frame, or the same frame over and over) with a watchdog, and reconnect with
 * exponential backoff — forever when max_retries is -1. Subclasses only open and close the
 * underlying stream (an ffmpeg child, an HTTP poll loop).
 *
 * The failure count (and so the backoff) is forgiven only once a stream has delivered frames
 * steadily for a while: a camera that answers once and dies again keeps backing off, while
 * one that was healthy for long retries at the base interval when it drops. While a camera
 * that refused connections waits out a long backoff, its port is knocked on at the base
 * interval (reachability.ts) so it is reopened soon after it comes back.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { Logger } from '@detector-worker/shared/logging';
import { backoffDelayMs, mayRetry } from './backoff.js';
import type { CameraSource, Frame } from './frame.js';
import { FrameRate } from './frame-rate.js';
import { canConnect, probeTarget } from './reachability.js';

/** Why a stream ended or a frame was refused: the label of relay_camera_failures_total. */
export type FailureKind = 'timeout' | 'connect' | 'http_status' | 'too_large' | 'not_jpeg' | 'invalid_jpeg' | 'stalled' | 'repeated' | 'exited' | 'error';

export interface ReaderOptions {
  reconnectIntervalSec: number;
  maxBackoffSec: number;
  maxRetries: number;
  watchdogMs: number;
  identicalFrameLimit: number;
  /** Frames must flow this long before failures are forgiven (default HEALTHY_AFTER_MS). */
  healthyAfterMs?: number;
}

export interface ReaderStats {
  framesRead: number;
  reconnects: number;
  online: boolean;
  lastFrameAt: number | null;
  state: 'connecting' | 'running' | 'waiting' | 'failed' | 'stopped';
  lastError: string | null;
  /** Failures by kind since the reader started (counter semantics). */
  failures: Partial<Record<FailureKind, number>>;
  /** Failures since the stream was last healthy: drives the backoff. */
  consecutiveFailures: number;
  /** The delay before the pending reconnect (0 while none is pending). */
  retryInMs: number;
}

/** Frames must flow this long (and for a few frame intervals) before failures are forgiven. */
export const HEALTHY_AFTER_MS = 10_000;

export interface CameraReaderEvents {
  frame: [Frame];
  online: [boolean];
}

export abstract class CameraReader extends EventEmitter<CameraReaderEvents> {
  latest: Frame | undefined;
  readonly stats: ReaderStats = { framesRead: 0, reconnects: 0, online: false, lastFrameAt: null, state: 'stopped', lastError: null, failures: {}, consecutiveFailures: 0, retryInMs: 0 };
  private openedAt = 0;
  private framesSinceOpen = 0;
  /** When this stream (since its last open) delivered its first frame. */
  private firstFrameAt = 0;
  private readonly meter = new FrameRate();
  private lastDigest = '';
  private repeats = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Increases with every wait, so a probe of an earlier wait cannot reconnect a later one. */
  private waits = 0;
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
    clearTimeout(this.probeTimer);
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
    clearTimeout(this.retryTimer);
    clearTimeout(this.probeTimer);
    this.stats.state = 'connecting';
    this.openedAt = Date.now();
    this.framesSinceOpen = 0;
    this.firstFrameAt = 0;
    this.stats.retryInMs = 0;
    try {
      this.open();
      this.stats.state = 'running';
    } catch (err) {
      this.ended(err instanceof Error ? err.message : String(err), 'error');
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
        this.restart(`the same frame ${this.repeats + 1} times in a row`, true, 'repeated');
        return;
      }
    }
    const now = Date.now();
    if (this.framesSinceOpen === 0) this.firstFrameAt = now;
    this.framesSinceOpen++;
    if (this.stats.consecutiveFailures > 0 && now - this.firstFrameAt >= this.healthyAfterMs()) {
      this.logger.info({ failures: this.stats.consecutiveFailures, healthyForMs: now - this.firstFrameAt }, 'camera healthy again; backoff reset');
      this.stats.consecutiveFailures = 0;
    }
    this.stats.framesRead++;
    this.stats.lastFrameAt = now;
    this.meter.add(now);
    const frame: Frame = { jpeg, capturedAt: new Date(), seq: this.stats.framesRead };
    this.latest = frame;
    this.setOnline(true);
    this.emit('frame', frame);
  }

  /** Frames per second delivered lately (measured here, whoever asks and however often). */
  framesPerSecond(now = Date.now()): number {
    return this.meter.perSecond(now);
  }

  /** A frame was refused without ending the stream (counted and, for now, only logged). */
  protected refused(reason: string, kind: FailureKind): void {
    this.count(kind);
    this.stats.lastError = reason;
    this.logger.debug({ reason, kind }, 'camera frame refused');
  }

  /** The stream ended on its own (error, exit, refused): reconnect after a backoff. */
  protected ended(reason: string, kind: FailureKind): void {
    if (this.stopped) return;
    // A stream that was healthy for long failed only now: retry at the base interval.
    if (this.firstFrameAt && Date.now() - this.firstFrameAt >= this.healthyAfterMs()) this.stats.consecutiveFailures = 0;
    this.firstFrameAt = 0;
    void this.close();
    this.setOnline(false);
    this.meter.reset();
    this.stats.lastError = reason;
    this.count(kind);
    const failures = ++this.stats.consecutiveFailures;
    if (!mayRetry(failures, this.options.maxRetries)) {
      this.stats.state = 'failed';
      this.logger.error({ reason, kind, failures }, 'camera failed; max_retries reached, giving up');
      return;
    }
    const delay = backoffDelayMs(failures - 1, this.options.reconnectIntervalSec, this.options.maxBackoffSec);
    this.stats.state = 'waiting';
    this.stats.retryInMs = delay;
    const wait = ++this.waits;
    this.logger.warn({ reason, kind, retryInMs: delay, failures }, 'camera stream ended; reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.stats.reconnects++;
      this.connect();
    }, delay);
    this.retryTimer.unref();
    const base = this.options.reconnectIntervalSec * 1000;
    if (kind === 'connect' && delay >= 2 * base) this.probeWhileWaiting(wait, base);
  }

  /** Knocks on the camera's port every `everyMs` during this wait; reconnects once it answers. */
  private probeWhileWaiting(wait: number, everyMs: number): void {
    const target = probeTarget(this.source.url);
    if (!target) return;
    const waiting = () => !this.stopped && this.waits === wait && this.stats.state === 'waiting';
    const knock = async (): Promise<void> => {
      if (!waiting()) return;
      const open = await canConnect(target.host, target.port, Math.min(2000, Math.max(200, everyMs)));
      if (!waiting()) return;
      if (open) {
        this.logger.info({ port: target.port }, 'camera accepts connections again; reconnecting before the backoff ends');
        this.stats.reconnects++;
        this.connect();
        return;
      }
      this.probeTimer = setTimeout(() => void knock(), everyMs);
      this.probeTimer.unref();
    };
    this.probeTimer = setTimeout(() => void knock(), everyMs);
    this.probeTimer.unref();
  }

  private count(kind: FailureKind): void {
    this.stats.failures[kind] = (this.stats.failures[kind] ?? 0) + 1;
  }

  /** Healthy means frames for HEALTHY_AFTER_MS and at least three frame intervals. */
  private healthyAfterMs(): number {
    return Math.max(this.options.healthyAfterMs ?? HEALTHY_AFTER_MS, 3000 / this.rate);
  }

  /** Reopens the stream; as a failure it counts towards backoff and max_retries. */
  protected restart(reason: string, asFailure: boolean, kind: FailureKind = 'error'): void {
    if (asFailure) {
      this.ended(reason, kind);
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
      this.restart(`no frame for ${silent} ms (watchdog)`, true, 'stalled');
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
