/**
 * The subscriptions the CMS asked for, and each display's session. A subscription is made
 * in the frame group of its (camera, crop, model), which FrameGroups owns (with the camera
 * reader behind it). Subscribe is idempotent; a changed payload is applied in place (the
 * subscription moves to the right group, cameras are released when unused).
 */
import type { Logger } from '@detector-worker/shared/logging';
import { redactUrl } from '@detector-worker/shared/logging';
import { samePayload, splitSubscriptionIdentifier, type CropBox, type SubscribePayload } from '@detector-worker/shared/protocol/messages';
import type { CameraReader } from '../cameras/camera-reader.js';
import type { CameraSource } from '../cameras/frame.js';
import type { FrameGroup, GroupMember } from '../infer-link/frame-group.js';
import type { FrameGroups } from '../infer-link/frame-groups.js';
import { cropKey, cropOf } from '../infer-link/crop.js';

export interface Subscription extends GroupMember {
  readonly id: string;
  readonly displayId: string;
  readonly cameraId: string;
  readonly payload: SubscribePayload;
  readonly source: CameraSource;
  readonly crop: CropBox | undefined;
  sessionId: string | number | null;
  /** The group it is in (FrameGroups adds and removes it). */
  readonly group: FrameGroup<Subscription>;
  /** Last flat detection sent for it, for the debug page. */
  last?: { detection: Record<string, unknown> | null; result: unknown; at: number };
}

/** Why a subscribe was refused: a bad identifier, or MAX_STREAMS reached. */
export type RefusalCode = 'bad_identifier' | 'max_streams';

export type SubscribeOutcome = { status: 'added' | 'unchanged' | 'updated' } | { status: 'refused'; code: RefusalCode; reason: string };

export interface RegistryOptions {
  maxStreams: number;
}

/** Displays whose session is remembered before any of their subscriptions exists. */
const MAX_REMEMBERED_SESSIONS = 10_000;

export class SubscriptionRegistry {
  private readonly subs = new Map<string, Subscription>();
  /** display -> session, kept so a subscription added later gets its display's session. */
  private readonly sessions = new Map<string, string | number>();
  /**
   * Refused subscribes by code (metrics): the wire protocol has no refusal message, so a CMS
   * that subscribes past MAX_STREAMS learns of it only from the log, the state report and this.
   */
  readonly refused: Record<RefusalCode, number> = { bad_identifier: 0, max_streams: 0 };

  constructor(
    private readonly groups: FrameGroups<Subscription>,
    private readonly options: RegistryOptions,
    private readonly logger: Logger,
  ) {}

  private refuse(code: RefusalCode, reason: string): SubscribeOutcome {
    this.refused[code]++;
    return { status: 'refused', code, reason };
  }

  subscribe(payload: SubscribePayload): SubscribeOutcome {
    const ids = splitSubscriptionIdentifier(payload.subscriptionIdentifier);
    if (!ids) return this.refuse('bad_identifier', 'subscriptionIdentifier must be "display;camera"');
    const existing = this.subs.get(payload.subscriptionIdentifier);
    if (existing && samePayload(existing.payload, payload)) return { status: 'unchanged' };
    if (!existing && this.subs.size >= this.options.maxStreams) {
      const reason = `max_streams (${this.options.maxStreams}) reached: ${payload.subscriptionIdentifier} refused`;
      this.logger.warn({ subscription: payload.subscriptionIdentifier, maxStreams: this.options.maxStreams }, reason);
      return this.refuse('max_streams', reason);
    }
    const source: CameraSource = payload.rtspUrl ? { kind: 'rtsp', url: payload.rtspUrl } : { kind: 'snapshot', url: payload.snapshotUrl!, intervalMs: payload.snapshotInterval ?? 5000 };
    const crop = cropOf(payload);
    const sessionId = existing?.sessionId ?? this.sessions.get(ids.display) ?? null;
    if (existing) this.groups.leave(existing.id, existing.group);
    const sub = this.groups.join({ source, crop, modelId: payload.modelId, modelUrl: payload.modelUrl }, (group) => ({
      id: payload.subscriptionIdentifier,
      displayId: ids.display,
      cameraId: ids.camera,
      payload,
      source,
      crop,
      sessionId,
      group,
    }));
    this.subs.set(sub.id, sub);
    this.logger.info({ subscription: sub.id, modelId: payload.modelId, camera: redactUrl(source.url), crop: cropKey(crop) }, existing ? 'subscription updated' : 'subscribed');
    return { status: existing ? 'updated' : 'added' };
  }

  unsubscribe(id: string): boolean {
    const sub = this.subs.get(id);
    if (!sub) return false;
    this.subs.delete(id);
    this.groups.leave(sub.id, sub.group);
    this.logger.info({ subscription: id }, 'unsubscribed');
    return true;
  }

  /** Sets (or clears, with null) the session of every subscription of the display. */
  setSessionId(displayId: string, sessionId: string | number | null): number {
    this.sessions.delete(displayId);
    if (sessionId !== null) {
      // Bounded: a CMS naming endless displays cannot grow this without limit.
      if (this.sessions.size >= MAX_REMEMBERED_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
      this.sessions.set(displayId, sessionId);
    }
    let n = 0;
    for (const sub of this.subs.values()) {
      if (sub.id.startsWith(`${displayId};`)) {
        sub.sessionId = sessionId;
        n++;
      }
    }
    return n;
  }

  get(id: string): Subscription | undefined {
    return this.subs.get(id);
  }

  list(): Subscription[] {
    return [...this.subs.values()];
  }

  readerOf(sub: Subscription): CameraReader | undefined {
    return this.groups.readerOf(sub.group);
  }

  /** Whether the subscription's camera delivered a frame within its watchdog window. */
  online(sub: Subscription): boolean {
    return this.readerOf(sub)?.online ?? false;
  }

  groupCount(): number {
    return this.groups.size;
  }

  clear(): void {
    for (const id of [...this.subs.keys()]) this.unsubscribe(id);
  }
}
