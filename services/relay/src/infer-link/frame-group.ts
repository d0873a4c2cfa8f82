/**
 * Subscriptions that share a camera, a crop and a model form one group: each camera frame
 * is cropped and sent to infer once, and the answer is fanned out to every member with its
 * own identifier and session. At most one request is in flight; a newer frame replaces the
 * one waiting (nothing queues), and errors back the group off instead of retrying hot.
 * With tracking (the default), frames go as detect-stage requests and group-tracking.ts
 * decides the few full runs and the one event per visit; full runs go before frames.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@detector-worker/shared/logging';
import type { CropBox } from '@detector-worker/shared/protocol/messages';
import type { Frame } from '../cameras/frame.js';
import { backoffDelayMs } from '@detector-worker/shared/backoff';
import { cropJpeg, detectImage, motionThumbnail, type DetectFrames } from './frame-images.js';
import { GroupTracking, type FullRun, type VisitEvent } from './group-tracking.js';
import type { InferAnswer, InferClient, InferRequest } from './infer-client.js';

export interface GroupStats {
  framesSeen: number;
  framesSent: number;
  /** Frames replaced by a newer one before they could be sent. */
  framesDropped: number;
  errors: Record<string, number>;
  lastLatencyMs: number | null;
  /** Capture -> POST start of the last frame sent. */
  lastFrameAgeMs: number | null;
  lastResultAt: number | null;
  /** Frames not sent because the scene was quiet (nothing tracked, nothing moving). */
  framesIdle: number;
  /** Times the camera was slowed to the idle rate. */
  cameraSlowdowns: number;
  /** Detect-stage requests, full runs, visits and their events (tracking mode). */
  detectRequests: number;
  fullRuns: number;
  visitsStarted: number;
  visitsEnded: number;
  visitEvents: number;
}

/** What a group needs of each subscription sharing it; the subscription itself comes back in results. */
export interface GroupMember {
  readonly id: string;
  readonly displayId: string;
  /** The display's session now: read when a frame is sent. */
  readonly sessionId: string | number | null;
}

/** Waits after failed infer requests without a Retry-After: 250 ms doubling up to 30 s. */
const INFER_BACKOFF_BASE_MS = 250;
const INFER_BACKOFF_MAX_MS = 30_000;

export interface GroupResult<M extends GroupMember = GroupMember> {
  subscription: M;
  frame: Frame;
  answer: InferAnswer;
  /** The member's session when the frame was sent. */
  sessionAtSend: string | number | null;
  /** A later run of a visit changed these attributes: a patch of the member's session. */
  patch?: boolean;
}

export interface FrameGroupDeps<M extends GroupMember = GroupMember> {
  /** One infer (InferClient) or a router over replicas (InferRouter). */
  client: Pick<InferClient, 'infer'>;
  logger: Logger;
  jpegQuality: number;
  /** How detect-stage images travel (DETECT_FRAMES); default raw RGB. */
  detectFrames?: DetectFrames;
  onResult: (r: GroupResult<M>) => void;
  onLatency?: (ms: number, ok: boolean, code: string) => void;
  /** Visits and requests of tracking groups (metrics). */
  onVisitEvent?: (event: VisitEvent, value?: number) => void;
  /** While nothing is tracked and nothing moves, a detect frame at most this often (ms). */
  idleIntervalMs?: number;
}

export class FrameGroup<M extends GroupMember = GroupMember> {
  private readonly members = new Map<string, M>();
  readonly stats: GroupStats = { framesSeen: 0, framesSent: 0, framesDropped: 0, errors: {}, lastLatencyMs: null, lastFrameAgeMs: null, lastResultAt: null, framesIdle: 0, cameraSlowdowns: 0, detectRequests: 0, fullRuns: 0, visitsStarted: 0, visitsEnded: 0, visitEvents: 0 };
  readonly tracking: GroupTracking;
  private pending: Frame | undefined;
  private inFlight = false;
  private failures = 0;
  private backoffUntil = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Whether the camera is read at the idle rate now. */
  private slowCamera = false;
  /** Set by FrameGroups when the camera can be slowed while the scene is quiet. */
  onCameraSlow: ((slow: boolean) => void) | undefined;

  constructor(
    readonly key: string,
    readonly modelId: string,
    readonly modelUrl: string,
    readonly crop: CropBox | undefined,
    private readonly deps: FrameGroupDeps<M>,
  ) {
    this.tracking = new GroupTracking(key, deps.logger, (event, value) => {
      if (event === 'detect') this.stats.detectRequests++;
      else if (event === 'fullRun') this.stats.fullRuns++;
      else if (event === 'started') this.stats.visitsStarted++;
      else if (event === 'ended') this.stats.visitsEnded++;
      else if (event === 'event') this.stats.visitEvents++;
      deps.onVisitEvent?.(event, value);
    }, deps.idleIntervalMs);
  }

  /** Members join and leave through FrameGroups, which owns the groups. */
  add(member: M): void {
    this.members.set(member.id, member);
  }

  remove(id: string): boolean {
    return this.members.delete(id);
  }

  get size(): number {
    return this.members.size;
  }

  /** Camera callback: keep only the newest frame. */
  onFrame(frame: Frame): void {
    if (this.closed) return;
    this.stats.framesSeen++;
    if (this.pending) this.stats.framesDropped++;
    this.pending = frame;
    void this.pump();
  }

  close(): void {
    this.closed = true;
    this.pending = undefined;
    clearTimeout(this.retryTimer);
    this.tracking.close([...this.members.keys()]);
  }

  private async pump(): Promise<void> {
    if (this.inFlight || (!this.pending && this.tracking.queued === 0) || this.closed || this.members.size === 0) return;
    const wait = this.backoffUntil - Date.now();
    if (wait > 0) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.pump(), wait);
      this.retryTimer.unref();
      return;
    }
    this.inFlight = true;
    try {
      const run = this.tracking.nextRun();
      if (run) await this.sendFullRun(run);
      else {
        const frame = this.pending!;
        this.pending = undefined;
        await this.send(frame);
      }
    } catch (err) {
      this.deps.logger.warn({ group: this.key, err }, 'frame could not be sent');
    } finally {
      this.inFlight = false;
    }
    void this.pump();
  }

  private async send(frame: Frame): Promise<void> {
    const members = [...this.members.values()];
    const first = members[0];
    if (!first) return;
    // Until the pipeline says it does not track, frames go as the cheap detect stage.
    const tracking = this.tracking.enabled !== false;
    const at = frame.capturedAt.getTime();
    const idle = this.tracking.idleDecision(at);
    const skip = idle === 'skip' || (idle === 'check' && this.tracking.skipWhenIdle(await motionThumbnail(frame, this.crop), at));
    this.pace(at);
    if (skip) {
      this.stats.framesIdle++;
      return;
    }
    const image = tracking ? await detectImage(frame, this.crop, this.tracking.modelInput, this.deps.jpegQuality, this.deps.detectFrames ?? 'raw') : undefined;
    const body = tracking ? image?.body : this.crop ? await cropJpeg(frame, this.crop, this.deps.jpegQuality) : frame.jpeg;
    if (!body) {
      this.count('CROP_OUTSIDE_FRAME');
      // Known only once frames arrive (the CMS does not know the resolution); said once.
      if (this.stats.errors.CROP_OUTSIDE_FRAME === 1) this.deps.logger.warn({ group: this.key, crop: this.crop }, 'crop lies outside the camera frame; nothing is sent for it');
      return;
    }
    const sessions = new Map(members.map((m) => [m.id, m.sessionId] as const));
    this.stats.framesSent++;
    this.stats.lastFrameAgeMs = Date.now() - at;
    const answer = await this.request(body, frame, first, { requestId: randomUUID(), ...(tracking ? { stage: 'detect' as const } : {}), ...(image?.raw ? { raw: image.raw } : {}) });
    if (!answer) return;
    if (tracking && image) {
      this.tracking.onDetect({ frame }, image, answer, members.map((m) => m.id));
      this.pace(at);
      // The first answer said the pipeline does not track: this frame goes again, whole.
      if (this.tracking.enabled === false && !this.pending) this.pending = frame;
      return;
    }
    this.fanOut(members, frame, answer, sessions);
  }

  /** Slows the camera while the scene stays quiet, and speeds it up again at the first sign of life. */
  private pace(at: number): void {
    if (!this.onCameraSlow) return;
    const slow = this.tracking.wantsSlowCamera(at);
    if (slow === this.slowCamera) return;
    this.slowCamera = slow;
    this.stats.cameraSlowdowns += slow ? 1 : 0;
    this.deps.logger.info({ group: this.key }, slow ? 'quiet scene: camera read at the idle rate' : 'activity: camera back to its full rate');
    this.onCameraSlow(slow);
  }

  /** One full pipeline run of a visit, on its best frame, focused on its box. */
  private async sendFullRun(run: FullRun): Promise<void> {
    const members = [...this.members.values()];
    const first = members[0];
    if (!first) return;
    const sessions = new Map(members.map((m) => [m.id, m.sessionId] as const));
    // The full run sees the crop at full resolution: branches crop the car again, actions save it.
    const jpeg = this.crop ? await cropJpeg(run.at.frame, this.crop, this.deps.jpegQuality) : run.at.frame.jpeg;
    if (!jpeg) return;
    const answer = await this.request(jpeg, run.at.frame, first, { requestId: run.visitId, stage: 'full', focus: run.box });
    if (!answer) {
      this.tracking.retry(run);
      return;
    }
    const outcome = this.tracking.onFullRun(run, answer);
    if (outcome.kind === 'event') this.fanOut(members, run.at.frame, { ...answer, detection: outcome.detection }, sessions);
    else if (outcome.kind === 'patch') {
      // Only a display with a session has something to patch.
      const withSession = members.filter((m) => this.members.has(m.id) && m.sessionId !== null);
      for (const m of withSession) this.deps.onResult({ subscription: m, frame: run.at.frame, answer: { ...answer, detection: outcome.changed }, sessionAtSend: m.sessionId, patch: true });
    }
  }

  /**
   * POSTs one image with the first member's context (templates of pipeline actions); every
   * member gets the answer under its own identifier and session. Undefined after a failure,
   * which backs the group off.
   */
  private async request(body: Buffer, frame: Frame, first: M, extra: Pick<InferRequest, 'requestId' | 'stage' | 'focus' | 'raw'>): Promise<InferAnswer | undefined> {
    const outcome = await this.deps.client.infer(body, {
      modelId: this.modelId,
      modelUrl: this.modelUrl,
      subscriptionIdentifier: first.id,
      displayId: first.displayId,
      sessionId: first.sessionId === null ? null : String(first.sessionId),
      capturedAt: frame.capturedAt.toISOString(),
      ...extra,
    });
    this.deps.onLatency?.(outcome.latencyMs, outcome.ok, outcome.ok ? 'ok' : outcome.code);
    this.stats.lastLatencyMs = outcome.latencyMs;
    if (!outcome.ok) {
      this.failures++;
      this.count(outcome.code);
      const delay = outcome.retryAfterMs ?? backoffDelayMs(this.failures, INFER_BACKOFF_BASE_MS, INFER_BACKOFF_MAX_MS);
      this.backoffUntil = Date.now() + delay;
      this.deps.logger.warn({ group: this.key, status: outcome.status, code: outcome.code, reason: outcome.message, backoffMs: delay }, 'infer request failed; backing off');
      return undefined;
    }
    this.failures = 0;
    this.stats.lastResultAt = Date.now();
    return outcome.answer;
  }

  private fanOut(members: readonly M[], frame: Frame, answer: InferAnswer, sessions: ReadonlyMap<string, string | number | null>): void {
    for (const m of members) {
      if (!this.members.has(m.id)) continue;
      this.deps.onResult({ subscription: m, frame, answer, sessionAtSend: sessions.get(m.id) ?? null });
    }
  }

  private count(code: string): void {
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
  }
}
