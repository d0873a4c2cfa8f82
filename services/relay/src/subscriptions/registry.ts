/**
 * The subscriptions the CMS asked for, and their wiring: each subscription joins the frame
 * group of its (camera, crop, model), each group holds one reference on its camera reader.
 * Subscribe is idempotent; a changed payload is applied in place (the subscription moves
 * to the right group, cameras are released when unused). Sessions are per display.
 */
import type { Logger } from '@detector-worker/shared/logging';
import { redactUrl } from '@detector-worker/shared/logging';
import { samePayload, splitSubscriptionIdentifier, type CropBox, type SubscribePayload } from '@detector-worker/shared/protocol/messages';
import type { CameraHub } from '../cameras/camera-hub.js';
import type { CameraReader } from '../cameras/camera-reader.js';
import { cameraKey, type CameraSource } from '../cameras/frame.js';
import { FrameGroup, type FrameGroupDeps } from '../inference/frame-group.js';
import { cropKey, cropOf } from './crop.js';

export interface Subscription {
  id: string;
  displayId: string;
  cameraId: string;
  payload: SubscribePayload;
  source: CameraSource;
  crop: CropBox | undefined;
  sessionId: string | number | null;
  group: FrameGroup;
  /** Last flat detection sent for it, for the debug page. */
  last?: { detection: Record<string, unknown> | null; result: unknown; at: number };
}

export type SubscribeOutcome = { status: 'added' | 'unchanged' | 'updated' } | { status: 'refused'; reason: string };

export interface RegistryOptions {
  maxStreams: number;
  /** Frames per second an RTSP camera is read at. */
  targetFps: number;
  /** The original worker's frame processing interval: caps the RTSP rate at 1000/poll ms. */
  pollIntervalMs?: number;
}

/** Displays whose session is remembered before any of their subscriptions exists. */
const MAX_REMEMBERED_SESSIONS = 10_000;

export class SubscriptionRegistry {
  private readonly subs = new Map<string, Subscription>();
  private readonly groups = new Map<string, { group: FrameGroup; reader: CameraReader; source: CameraSource; detach: () => void }>();
  /** display -> session, kept so a subscription added later gets its display's session. */
  private readonly sessions = new Map<string, string | number>();

  constructor(
    private readonly hub: CameraHub,
    private readonly groupDeps: FrameGroupDeps,
    private readonly options: RegistryOptions,
    private readonly logger: Logger,
  ) {}

  subscribe(payload: SubscribePayload): SubscribeOutcome {
    const ids = splitSubscriptionIdentifier(payload.subscriptionIdentifier);
    if (!ids) return { status: 'refused', reason: 'subscriptionIdentifier must be "display;camera"' };
    const existing = this.subs.get(payload.subscriptionIdentifier);
    if (existing && samePayload(existing.payload, payload)) return { status: 'unchanged' };
    if (!existing && this.subs.size >= this.options.maxStreams) {
      const reason = `max_streams (${this.options.maxStreams}) reached: ${payload.subscriptionIdentifier} refused`;
      this.logger.warn({ subscription: payload.subscriptionIdentifier, maxStreams: this.options.maxStreams }, reason);
      return { status: 'refused', reason };
    }
    const source: CameraSource = payload.rtspUrl ? { kind: 'rtsp', url: payload.rtspUrl } : { kind: 'snapshot', url: payload.snapshotUrl!, intervalMs: payload.snapshotInterval ?? 5000 };
    const crop = cropOf(payload);
    const sub: Subscription = {
      id: payload.subscriptionIdentifier,
      displayId: ids.display,
      cameraId: ids.camera,
      payload,
      source,
      crop,
      sessionId: existing?.sessionId ?? this.sessions.get(ids.display) ?? null,
      group: undefined as unknown as FrameGroup,
    };
    if (existing) this.leaveGroup(existing);
    sub.group = this.joinGroup(sub);
    this.subs.set(sub.id, sub);
    this.logger.info({ subscription: sub.id, modelId: payload.modelId, camera: redactUrl(source.url), crop: cropKey(crop) }, existing ? 'subscription updated' : 'subscribed');
    return { status: existing ? 'updated' : 'added' };
  }

  unsubscribe(id: string): boolean {
    const sub = this.subs.get(id);
    if (!sub) return false;
    this.subs.delete(id);
    this.leaveGroup(sub);
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
    return this.groups.get(sub.group.key)?.reader;
  }

  online(sub: Subscription): boolean {
    return this.readerOf(sub)?.stats.online ?? false;
  }

  groupCount(): number {
    return this.groups.size;
  }

  clear(): void {
    for (const id of [...this.subs.keys()]) this.unsubscribe(id);
  }

  /** Frames per second a group needs from its camera. */
  rateFor(source: CameraSource): number {
    if (source.kind === 'snapshot') return 1000 / (source.intervalMs ?? 5000);
    const poll = this.options.pollIntervalMs;
    return poll ? Math.min(this.options.targetFps, 1000 / poll) : this.options.targetFps;
  }

  private joinGroup(sub: Subscription): FrameGroup {
    const key = `${cameraKey(sub.source)}|${cropKey(sub.crop)}|${sub.payload.modelId}|${sub.payload.modelUrl}`;
    let entry = this.groups.get(key);
    if (!entry) {
      const group = new FrameGroup(key, String(sub.payload.modelId), sub.payload.modelUrl, sub.crop, this.groupDeps);
      const reader = this.hub.acquire(sub.source, key, this.rateFor(sub.source));
      const onFrame = (f: Parameters<FrameGroup['onFrame']>[0]) => group.onFrame(f);
      reader.on('frame', onFrame);
      entry = { group, reader, source: sub.source, detach: () => reader.off('frame', onFrame) };
      this.groups.set(key, entry);
    }
    entry.group.members.set(sub.id, sub);
    return entry.group;
  }

  private leaveGroup(sub: Subscription): void {
    const entry = this.groups.get(sub.group.key);
    if (!entry) return;
    entry.group.members.delete(sub.id);
    if (entry.group.members.size > 0) return;
    entry.detach();
    entry.group.close();
    this.groups.delete(sub.group.key);
    this.hub.release(entry.source, sub.group.key);
  }
}
