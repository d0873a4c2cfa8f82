/**
 * Lifecycle shared by every camera reader: connect, deliver only the latest frame, notice
 * stalls (no frame, or the same frame over and over) with a watchdog, and reconnect with
 * exponential backoff — forever when max_retries is -1. Subclasses only open and close the
 * underlying stream (an ffmpeg child, an HTTP poll loop).
 *
 * The states and the moves between them are in reader-state.ts; every change of state goes
 * through moveTo(), which refuses a move the table does not allow and logs the ones it makes.
 * `online` is derived: streaming, with a frame inside the watchdog window.
 *
 * The failure count (and so the backoff) is forgiven only once a stream has delivered frames
 * steadily for a while: a camera that answers once and dies again keeps backing off, while
 * one that was healthy for long retries at the base interval when it drops. While a camera
 * that refused connections waits out a long backoff, its port is knocked on at the base
 * interval (reachability.ts) so it is reopened soon after it comes back.
 */
import { EventEmitter } from 'node:events';
import { backoffDelayMs, mayRetry } from '@detector-worker/shared/backoff';
import type { Logger } from '@detector-worker/shared/logging';
import type { CameraSource, Frame } from './frame.js';
import type { Preview } from './preview.js';
import { FrameRate } from './frame-rate.js';
import { canConnect, probeTarget } from './reachability.js';
import { canMove, ENTERED, hasStream, isOnline, type ReaderState } from './reader-state.js';

export type { ReaderState } from './reader-state.js';

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

/** A snapshot of a reader for reports (/debug, metrics, state reports). */
export interface ReaderStats {
  framesRead: number;
  reconnects: number;
  /** A frame arrived within the watchdog window (derived from state and lastFrameAt). */
  online: boolean;
  lastFrameAt: number | null;
  state: ReaderState;
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
}

export abstract class CameraReader extends EventEmitter<CameraReaderEvents> {
  latest: Frame | undefined;
  private current: ReaderState = 'idle';
  private framesRead = 0;
  private reconnects = 0;
  private lastFrameAt: number | null = null;
  private lastError: string | null = null;
  private readonly failures: Partial<Record<FailureKind, number>> = {};
  private consecutiveFailures = 0;
  private retryInMs = 0;
  private openedAt = 0;
  private framesSinceOpen = 0;
  /** When this stream (since its last open) delivered its first frame. */
  private firstFrameAt = 0;
  private readonly meter = new FrameRate();
  private repeats = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Increases with every wait, so a probe of an earlier wait cannot reconnect a later one. */
  private waits = 0;
  private watchdog: NodeJS.Timeout | undefined;
  /** Resolves once the stream closed by stop() is gone. */
  private stopped: Promise<void> | undefined;
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

  get state(): ReaderState {
    return this.current;
  }

  /** A frame arrived within the watchdog window. */
  get online(): boolean {
    return isOnline(this.current, this.lastFrameAt, Date.now(), this.stallLimitMs());
  }

  get stats(): ReaderStats {
    return {
      framesRead: this.framesRead,
      reconnects: this.reconnects,
      online: this.online,
      lastFrameAt: this.lastFrameAt,
      state: this.current,
      lastError: this.lastError,
      failures: { ...this.failures },
      consecutiveFailures: this.consecutiveFailures,
      retryInMs: this.retryInMs,
    };
  }

  start(): void {
    if (this.current !== 'idle') return;
    const tick = Math.max(50, Math.min(1000, this.options.watchdogMs / 4));
    this.watchdog = setInterval(() => this.checkStall(), tick);
    this.watchdog.unref();
    this.connect('started');
  }

  /** Stops reading; resolves once the underlying stream (an ffmpeg child) is gone. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.moveTo('stopped', 'released by its last user');
    clearTimeout(this.retryTimer);
    clearTimeout(this.probeTimer);
    clearInterval(this.watchdog);
    this.retryInMs = 0;
    this.stopped = Promise.resolve(this.close());
    this.removeAllListeners();
    return this.stopped;
  }

  /** The needed rate changed (a subscription joined or left). */
  setRate(fps: number): void {
    if (Math.abs(fps - this.rate) < 1e-6) return;
    const before = this.rate;
    this.rate = fps;
    if (this.rateNeedsRestart(before, fps) && hasStream(this.current)) {
      this.logger.info({ from: before, to: fps }, 'camera rate changed; reopening');
      this.reopen('rate changed');
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

  /** The one place the state changes: refuses what the table does not allow, logs the rest. */
  private moveTo(to: ReaderState, reason: string, fields: Record<string, unknown> = {}): boolean {
    const from = this.current;
    if (!canMove(from, to)) {
      this.logger.debug({ from, to, reason }, 'camera state change refused');
      return false;
    }
    this.current = to;
    const { level, msg } = ENTERED[to];
    this.logger[level]({ from, state: to, reason, ...fields }, msg);
    return true;
  }

  private connect(reason: string): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.probeTimer);
    if (!this.moveTo('connecting', reason)) return;
    this.openedAt = Date.now();
    this.framesSinceOpen = 0;
    this.firstFrameAt = 0;
    this.retryInMs = 0;
    try {
      this.open();
    } catch (err) {
      this.ended(err instanceof Error ? err.message : String(err), 'error');
    }
  }

  /** Video streams that repeat one picture are frozen; a still scene's snapshots may be identical. */
  protected readonly detectsRepeats: boolean = true;

  /** A frame from the stream; false when it was not taken (no stream open, or it froze). */
  protected deliver(jpeg: Buffer, size: { width: number; height: number }, preview?: Preview): boolean {
    if (!hasStream(this.current)) return false;
    if (this.detectsRepeats) {
      // Byte comparison with the last frame: no hash per frame, and it stops at the first difference.
      this.repeats = this.latest?.jpeg.equals(jpeg) ? this.repeats + 1 : 0;
      if (this.repeats >= this.options.identicalFrameLimit) {
        this.ended(`the same frame ${this.repeats + 1} times in a row`, 'repeated');
        return false;
      }
    }
    const now = Date.now();
    if (this.framesSinceOpen === 0) this.firstFrameAt = now;
    this.framesSinceOpen++;
    if (this.consecutiveFailures > 0 && now - this.firstFrameAt >= this.healthyAfterMs()) {
      this.logger.info({ failures: this.consecutiveFailures, healthyForMs: now - this.firstFrameAt }, 'camera healthy again; backoff reset');
      this.consecutiveFailures = 0;
    }
    this.framesRead++;
    this.lastFrameAt = now;
    this.meter.add(now);
    const frame: Frame = { jpeg, width: size.width, height: size.height, capturedAt: new Date(), seq: this.framesRead, ...(preview ? { preview } : {}) };
    this.latest = frame;
    if (this.current === 'connecting') this.moveTo('streaming', 'first frame', { afterMs: now - this.openedAt });
    this.emit('frame', frame);
    return true;
  }

  /** Frames per second delivered lately (measured here, whoever asks and however often). */
  framesPerSecond(now = Date.now()): number {
    return this.meter.perSecond(now);
  }

  /** A frame was refused without ending the stream (counted and, for now, only logged). */
  protected refused(reason: string, kind: FailureKind): void {
    this.count(kind);
    this.lastError = reason;
    this.logger.debug({ reason, kind }, 'camera frame refused');
  }

  /**
   * The stream ended on its own (error, exit, stall, frozen picture): reconnect after a
   * backoff, or give up once max_retries is spent. Ignored without a stream (a late callback).
   */
  protected ended(reason: string, kind: FailureKind): void {
    if (!hasStream(this.current)) return;
    // A stream that was healthy for long failed only now: retry at the base interval.
    if (this.firstFrameAt && Date.now() - this.firstFrameAt >= this.healthyAfterMs()) this.consecutiveFailures = 0;
    this.firstFrameAt = 0;
    void this.close();
    this.meter.reset();
    this.lastError = reason;
    this.count(kind);
    const failures = ++this.consecutiveFailures;
    if (!mayRetry(failures, this.options.maxRetries)) {
      this.moveTo('failed', reason, { kind, failures });
      return;
    }
    const base = this.options.reconnectIntervalSec * 1000;
    const delay = backoffDelayMs(failures, base, this.options.maxBackoffSec * 1000);
    this.retryInMs = delay;
    this.moveTo('backoff', reason, { kind, retryInMs: delay, failures });
    const wait = ++this.waits;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.reconnects++;
      this.connect('backoff over');
    }, delay);
    this.retryTimer.unref();
    if (kind === 'connect' && delay >= 2 * base) this.probeWhileWaiting(wait, base);
  }

  /** A planned reopen (rate changed, keyframes too sparse): no failure, no backoff. */
  protected reopen(reason: string): void {
    if (!hasStream(this.current)) return;
    void this.close();
    this.connect(reason);
  }

  /** Knocks on the camera's port every `everyMs` during this wait; reconnects once it answers. */
  private probeWhileWaiting(wait: number, everyMs: number): void {
    const target = probeTarget(this.source.url);
    if (!target) return;
    const waiting = () => this.waits === wait && this.current === 'backoff';
    const knock = async (): Promise<void> => {
      if (!waiting()) return;
      const open = await canConnect(target.host, target.port, Math.min(2000, Math.max(200, everyMs)));
      if (!waiting()) return;
      if (open) {
        this.logger.info({ port: target.port }, 'camera accepts connections again; reconnecting before the backoff ends');
        this.reconnects++;
        this.connect('camera accepts connections again');
        return;
      }
      this.probeTimer = setTimeout(() => void knock(), everyMs);
      this.probeTimer.unref();
    };
    this.probeTimer = setTimeout(() => void knock(), everyMs);
    this.probeTimer.unref();
  }

  private count(kind: FailureKind): void {
    this.failures[kind] = (this.failures[kind] ?? 0) + 1;
  }

  /** Healthy means frames for HEALTHY_AFTER_MS and at least three frame intervals. */
  private healthyAfterMs(): number {
    return Math.max(this.options.healthyAfterMs ?? HEALTHY_AFTER_MS, 3000 / this.rate);
  }

  /** Called on every watchdog tick while a stream is open (subclasses check their own pacing). */
  protected tick(): void {}

  /** The watchdog window. A slow rate (one frame a minute) is no stall: three frame intervals at least. */
  private stallLimitMs(): number {
    return Math.max(this.options.watchdogMs, 3000 / this.rate);
  }

  private checkStall(): void {
    if (!hasStream(this.current)) return;
    const since = this.current === 'streaming' && this.lastFrameAt !== null ? this.lastFrameAt : this.openedAt;
    const silent = Date.now() - since;
    if (silent > this.stallLimitMs()) {
      this.ended(`no frame for ${silent} ms (watchdog)`, 'stalled');
      return;
    }
    this.tick();
  }
}
