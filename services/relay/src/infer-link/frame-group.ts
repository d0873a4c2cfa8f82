/**
 * Subscriptions that share a camera, a crop and a model form one group: each camera frame
 * is cropped and sent to infer once, and the answer is fanned out to every member with its
 * own identifier and session. At most one request is in flight; a newer frame replaces the
 * one waiting (nothing queues), and errors back the group off instead of retrying hot.
 */
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import type { Logger } from '@detector-worker/shared/logging';
import type { CropBox } from '@detector-worker/shared/protocol/messages';
import type { Frame } from '../cameras/frame.js';
import { backoffDelayMs } from '@detector-worker/shared/backoff';
import { clampCrop } from './crop.js';
import type { InferAnswer, InferClient } from './infer-client.js';

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
}

export interface FrameGroupDeps<M extends GroupMember = GroupMember> {
  client: InferClient;
  logger: Logger;
  jpegQuality: number;
  onResult: (r: GroupResult<M>) => void;
  onLatency?: (ms: number, ok: boolean, code: string) => void;
}

export class FrameGroup<M extends GroupMember = GroupMember> {
  private readonly members = new Map<string, M>();
  readonly stats: GroupStats = { framesSeen: 0, framesSent: 0, framesDropped: 0, errors: {}, lastLatencyMs: null, lastFrameAgeMs: null, lastResultAt: null };
  private pending: Frame | undefined;
  private inFlight = false;
  private failures = 0;
  private backoffUntil = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly key: string,
    readonly modelId: string,
    readonly modelUrl: string,
    readonly crop: CropBox | undefined,
    private readonly deps: FrameGroupDeps<M>,
  ) {}

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
  }

  private async pump(): Promise<void> {
    if (this.inFlight || !this.pending || this.closed || this.members.size === 0) return;
    const wait = this.backoffUntil - Date.now();
    if (wait > 0) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.pump(), wait);
      this.retryTimer.unref();
      return;
    }
    const frame = this.pending;
    this.pending = undefined;
    this.inFlight = true;
    try {
      await this.send(frame);
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
    const jpeg = this.crop ? await cropJpeg(frame.jpeg, this.crop, this.deps.jpegQuality) : frame.jpeg;
    if (!jpeg) {
      this.count('CROP_OUTSIDE_FRAME');
      // Known only once frames arrive (the CMS does not know the resolution); said once.
      if (this.stats.errors.CROP_OUTSIDE_FRAME === 1) this.deps.logger.warn({ group: this.key, crop: this.crop }, 'crop lies outside the camera frame; nothing is sent for it');
      return;
    }
    const sessions = new Map(members.map((m) => [m.id, m.sessionId] as const));
    this.stats.framesSent++;
    this.stats.lastFrameAgeMs = Date.now() - frame.capturedAt.getTime();
    // The request carries the first member's context (templates of pipeline actions);
    // every member gets the answer under its own identifier and session below.
    const outcome = await this.deps.client.infer(jpeg, {
      modelId: this.modelId,
      modelUrl: this.modelUrl,
      subscriptionIdentifier: first.id,
      displayId: first.displayId,
      sessionId: first.sessionId === null ? null : String(first.sessionId),
      requestId: randomUUID(),
      capturedAt: frame.capturedAt.toISOString(),
    });
    this.deps.onLatency?.(outcome.latencyMs, outcome.ok, outcome.ok ? 'ok' : outcome.code);
    this.stats.lastLatencyMs = outcome.latencyMs;
    if (!outcome.ok) {
      this.failures++;
      this.count(outcome.code);
      const delay = outcome.retryAfterMs ?? backoffDelayMs(this.failures, INFER_BACKOFF_BASE_MS, INFER_BACKOFF_MAX_MS);
      this.backoffUntil = Date.now() + delay;
      this.deps.logger.warn({ group: this.key, status: outcome.status, code: outcome.code, reason: outcome.message, backoffMs: delay }, 'infer request failed; backing off');
      return;
    }
    this.failures = 0;
    this.stats.lastResultAt = Date.now();
    for (const m of members) {
      if (!this.members.has(m.id)) continue;
      this.deps.onResult({ subscription: m, frame, answer: outcome.answer, sessionAtSend: sessions.get(m.id) ?? null });
    }
  }

  private count(code: string): void {
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
  }
}

/** The crop of a JPEG frame as a JPEG; undefined when the crop lies outside the frame. */
export async function cropJpeg(jpeg: Buffer, crop: CropBox, quality: number): Promise<Buffer | undefined> {
  const meta = await sharp(jpeg).metadata();
  const rect = clampCrop(crop, meta.width ?? 0, meta.height ?? 0);
  if (!rect) return undefined;
  return sharp(jpeg).extract(rect).jpeg({ quality }).toBuffer();
}
