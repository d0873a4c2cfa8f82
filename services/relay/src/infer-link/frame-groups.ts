/**
 * The frame groups of the relay, keyed by camera, crop and model: the one owner of which
 * groups exist, who is in them and which camera reader feeds each. A group is created with
 * its first member (and takes one reference on its camera from the hub) and closed with its
 * last (and gives the reference back). Subscriptions only hold the group they are in.
 */
import type { CropBox } from '@detector-worker/shared/protocol/messages';
import type { CameraHub } from '../cameras/camera-hub.js';
import type { CameraReader } from '../cameras/camera-reader.js';
import { cameraKey, type CameraSource, type Frame } from '../cameras/frame.js';
import { cropKey } from './crop.js';
import { FrameGroup, type FrameGroupDeps, type GroupMember } from './frame-group.js';

/** What decides the group: the same camera, crop and model share one. */
export interface GroupSpec {
  source: CameraSource;
  crop: CropBox | undefined;
  modelId: string | number;
  modelUrl: string;
}

export interface CameraRateOptions {
  /** Frames per second an RTSP camera is read at. */
  targetFps: number;
  /** The original worker's frame processing interval: caps the RTSP rate at 1000/poll ms. */
  pollIntervalMs?: number;
  /**
   * While a tracking group's scene stays quiet, its camera is read at this rate (RTSP at or
   * below KEYFRAME_ONLY_FPS decodes keyframes only); undefined: always the full rate.
   */
  idleFps?: number;
}

/** The part of the camera hub a group needs: one reference on a camera per group. */
export type CameraSupply = Pick<CameraHub, 'acquire' | 'release'>;

export function groupKey(spec: GroupSpec): string {
  return `${cameraKey(spec.source)}|${cropKey(spec.crop)}|${spec.modelId}|${spec.modelUrl}`;
}

/** Frames per second a group needs from its camera (pure). */
export function cameraRate(source: CameraSource, options: CameraRateOptions): number {
  if (source.kind === 'snapshot') return 1000 / (source.intervalMs ?? 5000);
  const poll = options.pollIntervalMs;
  return poll ? Math.min(options.targetFps, 1000 / poll) : options.targetFps;
}

interface Entry<M extends GroupMember> {
  group: FrameGroup<M>;
  reader: CameraReader;
  source: CameraSource;
  detach: () => void;
}

export class FrameGroups<M extends GroupMember> {
  private readonly entries = new Map<string, Entry<M>>();

  constructor(
    private readonly cameras: CameraSupply,
    private readonly deps: FrameGroupDeps<M>,
    private readonly rates: CameraRateOptions,
  ) {}

  /**
   * Adds the member made by `create` to the group of `spec` (created, with its camera, when
   * none exists) and returns it: the member is made knowing its group, so it never exists
   * without one.
   */
  join(spec: GroupSpec, create: (group: FrameGroup<M>) => M): M {
    const key = groupKey(spec);
    let entry = this.entries.get(key);
    if (!entry) {
      const group = new FrameGroup<M>(key, String(spec.modelId), spec.modelUrl, spec.crop, this.deps);
      const fullRate = cameraRate(spec.source, this.rates);
      const reader = this.cameras.acquire(spec.source, key, fullRate);
      const idleFps = this.rates.idleFps;
      if (idleFps !== undefined && idleFps < fullRate) {
        // The hub reads a camera at the highest rate any group needs: a busy group sharing it keeps it fast.
        group.onCameraSlow = (slow) => {
          if (this.entries.get(key)?.group === group) this.cameras.acquire(spec.source, key, slow ? idleFps : fullRate);
        };
      }
      const onFrame = (frame: Frame): void => group.onFrame(frame);
      reader.on('frame', onFrame);
      entry = { group, reader, source: spec.source, detach: () => reader.off('frame', onFrame) };
      this.entries.set(key, entry);
    }
    const member = create(entry.group);
    entry.group.add(member);
    return member;
  }

  /** Takes the member out of its group; the last one out closes the group and releases its camera. */
  leave(memberId: string, group: FrameGroup<M>): void {
    const entry = this.entries.get(group.key);
    if (!entry || entry.group !== group) return;
    group.remove(memberId);
    if (group.size > 0) return;
    entry.detach();
    group.close();
    this.entries.delete(group.key);
    this.cameras.release(entry.source, group.key);
  }

  /** The camera reader feeding a group (undefined once the group is closed). */
  readerOf(group: FrameGroup<M>): CameraReader | undefined {
    const entry = this.entries.get(group.key);
    return entry?.group === group ? entry.reader : undefined;
  }

  get size(): number {
    return this.entries.size;
  }
}
