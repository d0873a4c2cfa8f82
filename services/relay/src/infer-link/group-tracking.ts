/**
 * What a frame group does with infer's answers when its pipeline tracks vehicles. The group
 * sends every frame as a cheap detect-stage request; this turns the detections into tracks
 * and visits (tracking/), queues each visit's full runs (on its best frame so far, focused on
 * its box, keyed by its visit id) and turns their answers into at most one event per visit,
 * then patches of changed attributes. The first answer says whether the pipeline tracks at
 * all (`tracking.enabled: false` gives back one event per frame with a detection).
 */
import type { Logger } from '@detector-worker/shared/logging';
import type { FlatDetection } from '@detector-worker/shared/protocol/messages';
import type { Frame } from '../cameras/frame.js';
import type { Box } from '../tracking/geometry.js';
import { GroupVisits, trackingSettings, type RunOutcome } from '../tracking/group-visits.js';
import { MotionDetector } from '../tracking/motion.js';
import type { Track, TrackInput } from '../tracking/tracker.js';
import type { InferAnswer } from './infer-client.js';

/** The frame a visit may be run on: the camera frame (a full run cuts its crop at full resolution). */
export interface VisitFrame {
  frame: Frame;
}

/** How a detect-stage image relates to the crop: its size in camera pixels and the scale back to them. */
export interface DetectGeometry {
  cropWidth: number;
  cropHeight: number;
  scaleX: number;
  scaleY: number;
}

export interface FullRun {
  visitId: string;
  at: VisitFrame;
  box: Box;
  attempts: number;
}

export type VisitEvent = 'started' | 'ended' | 'detect' | 'fullRun' | 'event' | 'patch';

export interface VisitSummary {
  id: string;
  trackId: number;
  className: string;
  ageSec: number;
  runs: number;
  eventSent: boolean;
  detection: FlatDetection | null;
}

/**
 * A camera is read slowly once its scene has been quiet this long. Short, because waking costs
 * little: a gated RTSP camera (rtsp-reader.ts) catches up from its last keyframe at once, so
 * what a slow camera risks is seeing motion up to one keyframe interval late.
 */
const QUIET_BEFORE_SLOW_MS = 4000;

/** A quiet scene is checked for motion at most this often. */
const MOTION_CHECK_INTERVAL_MS = 1000;

/** After motion (or the last track), frames go at the full rate this long. */
const ACTIVE_HOLD_MS = 2000;

/** Runs queued per group at most: a visit has one queued run, and few cars stand at a pump. */
const MAX_QUEUED_RUNS = 8;
/** A failed full run is tried again this many times (same visit id: idempotent in infer). */
export const MAX_RUN_ATTEMPTS = 3;

/** Detections of a detect-stage result, from a hostile-until-checked answer, in crop pixels. */
export function detectionsOf(result: unknown, scaleX = 1, scaleY = 1): TrackInput[] {
  const r = result as { detections?: unknown } | null;
  if (!r || typeof r !== 'object' || !Array.isArray(r.detections)) return [];
  const out: TrackInput[] = [];
  for (const d of r.detections as Array<{ class?: unknown; confidence?: unknown; bbox?: unknown }>) {
    const b = d?.bbox;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v))) continue;
    if (typeof d.confidence !== 'number' || !Number.isFinite(d.confidence)) continue;
    out.push({ box: [b[0] * scaleX, b[1] * scaleY, b[2] * scaleX, b[3] * scaleY] as Box, score: d.confidence, className: typeof d.class === 'string' ? d.class : 'object' });
  }
  return out;
}

/** Whether a result tree holds a plate reader's answer (an OCR node: `characters`, or a `reason` for no read). */
export function readsPlates(result: unknown, depth = 0): boolean {
  if (!result || typeof result !== 'object' || depth > 8) return false;
  const r = result as { characters?: unknown; text?: unknown; branch_results?: unknown };
  if (Array.isArray(r.characters) || (r.text === null && 'reason' in r)) return true;
  const branches = r.branch_results;
  if (!branches || typeof branches !== 'object') return false;
  return Object.values(branches as Record<string, unknown>).some((b) => readsPlates(b, depth + 1));
}

export class GroupTracking {
  /** Unknown until the first answer; then whether the pipeline tracks. */
  enabled: boolean | undefined;
  private visits: GroupVisits<VisitFrame> | undefined;
  private readonly queue: FullRun[] = [];
  lastTracks: readonly Track[] = [];
  lastDetectResult: unknown = null;
  /** The root detector's input size (from infer's answers): detect images are shrunk to it. */
  modelInput: { width: number; height: number } | undefined;
  /** The empty scene, learnt while quiet (never while cars stand in it). */
  private readonly motion = new MotionDetector();
  /** The scene with its parked cars, learnt from when they parked; set while the scene is parked (idleDecision). */
  private parkedMotion: MotionDetector | undefined;
  private lastDetectAt = -Infinity;
  private lastMotionCheckAt = -Infinity;
  /** Last time something moved, or a car was tracked that is not parked: frames go at the full rate for a while after it. */
  private lastActiveAt = -Infinity;
  /** Last time anything was tracked, parked or not (or the first look): a camera stays fast for a while after it. */
  private lastTrackedAt = -Infinity;
  /** The detect frame before the latest one (seconds, the tracker's clock). */
  private previousDetectTime = -Infinity;
  /** The latest detect frame missed a visit's car it saw in the one before: the next frame looks again. */
  private lookAgain = false;

  constructor(
    private readonly groupKey: string,
    private readonly logger: Logger,
    private readonly onEvent: (event: VisitEvent, value?: number) => void,
    /** While nothing is tracked and nothing moves, a detect frame at most this often. */
    private readonly idleIntervalMs = 3000,
  ) {}

  /** Whether the group tracks nothing now: the only time the motion gate may skip frames. */
  get quiet(): boolean {
    // Lost tracks (a car that left, kept for lostTimeoutSec in case it was only hidden) do not
    // hold the gate open: the idle frames and the motion check still find it if it comes back.
    return this.enabled === true && this.lastTracks.every((t) => t.state === 'lost');
  }

  /**
   * Whether every car in view is parked: each live track is confirmed, matched in the latest
   * detect frame, and the track of a visit whose event has gone, with no run of it waiting. A
   * parked scene is gated like a quiet one (motion checks, a detect frame per idle interval keeps
   * the tracks), so a car standing at a pump for minutes costs what an empty forecourt does in
   * detect requests. Its camera stays at the full rate (wantsSlowCamera asks for quiet) and every
   * frame is checked for motion, so the first frame of a car driving off goes to the tracker
   * while the car is still close enough for its track to follow: a slow camera's next look was a
   * keyframe interval away, and a car that drove off between two looks lost its track where it
   * had parked (docs/benchmarks.md, "Parked cars gated like an empty scene").
   */
  get parked(): boolean {
    if (this.enabled !== true || !this.visits || this.queue.length > 0) return false;
    const live = this.lastTracks.filter((t) => t.state !== 'lost');
    if (live.length === 0) return false;
    const sent = new Set(this.visits.current.filter((r) => r.eventSent).map((r) => r.visit.trackId));
    return live.every((t) => t.state === 'confirmed' && t.matched && sent.has(t.id));
  }

  /**
   * What to do with a frame of a quiet scene (nothing tracked) or a parked one: `send` it (full
   * rate), `skip` it, or `check` it for motion first. The motion check costs a thumbnail (about a
   * millisecond from a frame's preview, 6-12 ms decoding a 1080p JPEG without one), so a quiet
   * scene is checked at most once a second; a car driving in is seen within that (a parked one on
   * every frame, see `parked`). A frame whose idle interval is up is checked too, not only sent:
   * the detector may miss a car half in view, and a slow camera's next look is a keyframe
   * interval away.
   */
  idleDecision(at: number): 'send' | 'skip' | 'check' {
    if (this.lookAgain) return 'send';
    const quiet = this.quiet;
    const parked = !quiet && this.parked;
    this.parkedMotion = parked ? (this.parkedMotion ?? new MotionDetector()) : undefined;
    if (this.enabled === true && !quiet && !parked) this.lastActiveAt = at;
    if ((!quiet && !parked) || this.idleIntervalMs <= 0) return 'send';
    // Something just moved: every frame for a moment, so a car driving in is tracked at the
    // full rate from its first frames instead of one look a second.
    if (at - this.lastActiveAt < ACTIVE_HOLD_MS) return 'send';
    // A parked scene is checked on every frame: a car pulling out crosses a third of the frame
    // in a second, and its first moving frame must reach the tracker while its box still
    // overlaps the parked one (checked once a second, the track was lost where it had parked).
    if (parked || at - this.lastMotionCheckAt >= MOTION_CHECK_INTERVAL_MS) return 'check';
    return at - this.lastDetectAt >= this.idleIntervalMs ? 'send' : 'skip';
  }

  /** After a motion check: whether the frame may be skipped (nothing moves and no idle frame is due). */
  skipWhenIdle(thumb: Uint8Array | undefined, at: number): boolean {
    this.lastMotionCheckAt = at;
    if (!thumb) return false;
    // Parked cars are judged against the scene since they parked (a fresh background: the empty
    // scene's would call them motion), an empty scene against the empty scene. The frame's
    // idleDecision said which, just before.
    const motion = this.parkedMotion ?? this.motion;
    // The first thumbnail counts as motion (nothing to compare with) but is no sign of life.
    const primed = motion.primed;
    const moving = motion.moving(thumb);
    if (moving && primed) this.lastActiveAt = at;
    return !moving && at - this.lastDetectAt < this.idleIntervalMs;
  }

  /**
   * Whether the camera may be read slowly (keyframes only for RTSP): the scene has been quiet,
   * with nothing tracked and nothing moving, for QUIET_BEFORE_SLOW_MS. Motion seen in a slow
   * frame or a new track makes it fast again at once.
   */
  wantsSlowCamera(at: number): boolean {
    if (this.enabled !== true || this.idleIntervalMs <= 0) return false;
    // Quiet is measured from the first look at the scene, not from the epoch.
    if (!this.quiet || this.lastTrackedAt === -Infinity) this.lastTrackedAt = at;
    return this.quiet && at - Math.max(this.lastTrackedAt, this.lastActiveAt) >= QUIET_BEFORE_SLOW_MS;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** The next full run to send, if any (full runs go before detect frames). */
  nextRun(): FullRun | undefined {
    return this.queue.shift();
  }

  /** A full run infer could not answer: tried again at the head of the queue, a few times. */
  retry(run: FullRun): void {
    if (run.attempts >= MAX_RUN_ATTEMPTS) {
      this.logger.warn({ group: this.groupKey, visit: run.visitId, attempts: run.attempts }, 'full run of a visit failed; giving up on this frame');
      return;
    }
    this.queue.unshift({ ...run, attempts: run.attempts + 1 });
  }

  /** A detect-stage answer for `at`, whose image relates to the crop by `geometry`. */
  onDetect(at: VisitFrame, geometry: DetectGeometry, answer: InferAnswer, members: readonly string[]): void {
    this.onEvent('detect');
    this.lastDetectAt = at.frame.capturedAt.getTime();
    if (answer.modelInput) this.modelInput = answer.modelInput;
    const w = geometry.cropWidth;
    const h = geometry.cropHeight;
    if (!this.visits) {
      const settings = trackingSettings(answer.tracking ?? undefined, w, h);
      this.enabled = settings.enabled;
      if (!settings.enabled) {
        this.logger.info({ group: this.groupKey }, 'pipeline has tracking disabled: one event per frame with a detection');
        return;
      }
      this.visits = new GroupVisits<VisitFrame>(settings.tracker, settings.visits);
      this.logger.info({ group: this.groupKey, tracker: settings.tracker, visits: { ...settings.visits, zone: settings.visits.zone ?? 'whole frame' } }, 'tracking vehicles: one event per visit');
    }
    this.lastDetectResult = answer.result;
    const time = at.frame.capturedAt.getTime() / 1000;
    const outcome = this.visits.onDetections(detectionsOf(answer.result, geometry.scaleX, geometry.scaleY), at, w, h, time);
    this.lastTracks = this.visits.tracker.active;
    // A visit's car missed once (a detector blink, a person walking past) is looked at again at
    // once rather than an idle interval later; missed twice, it may have left.
    const visiting = new Set(this.visits.current.map((r) => r.visit.trackId));
    this.lookAgain = this.lastTracks.some((t) => !t.matched && t.lastSeen === this.previousDetectTime && visiting.has(t.id));
    this.previousDetectTime = time;
    for (const record of outcome.started) {
      this.onEvent('started');
      this.logger.info({ group: this.groupKey, displays: members, visit: record.id, trackId: record.visit.trackId, class: record.visit.className }, 'visit started');
    }
    for (const { record, reason, durationSec } of outcome.ended) {
      this.onEvent('ended', record.visit.runs);
      this.logger.info({ group: this.groupKey, displays: members, visit: record.id, trackId: record.visit.trackId, durationSec: Math.round(durationSec * 10) / 10, runs: record.visit.runs, eventSent: record.eventSent, reason }, 'visit ended');
    }
    for (const due of outcome.due) {
      const prior = this.queue.findIndex((r) => r.visitId === due.visitId);
      const run: FullRun = { visitId: due.visitId, at: due.frame, box: due.box, attempts: 1 };
      if (prior >= 0) this.queue[prior] = run;
      else if (this.queue.length < MAX_QUEUED_RUNS) this.queue.push(run);
      else this.logger.warn({ group: this.groupKey, visit: due.visitId }, 'too many full runs queued; this one is skipped');
    }
  }

  /** A full run's answer: what the members should hear. */
  onFullRun(run: FullRun, answer: InferAnswer): RunOutcome {
    this.onEvent('fullRun');
    if (!this.visits) return { kind: 'none', why: 'not tracking' };
    const outcome = this.visits.onFullRun(run.visitId, answer.detection, readsPlates(answer.result));
    if (outcome.kind === 'event') this.onEvent('event');
    if (outcome.kind === 'patch') this.onEvent('patch');
    if (outcome.kind === 'none') this.logger.debug({ group: this.groupKey, visit: run.visitId, why: outcome.why }, 'full run sends nothing');
    return outcome;
  }

  /** Current visits, for the /debug page. */
  summary(now = Date.now() / 1000): VisitSummary[] {
    return (this.visits?.current ?? []).map((r) => ({
      id: r.id,
      trackId: r.visit.trackId,
      className: r.visit.className,
      ageSec: Math.max(0, Math.round((now - r.visit.startedAt) * 10) / 10),
      runs: r.visit.runs,
      eventSent: r.eventSent,
      detection: r.detection,
    }));
  }

  close(members: readonly string[]): void {
    if (!this.visits) return;
    for (const { record, reason, durationSec } of this.visits.endAll()) {
      this.onEvent('ended', record.visit.runs);
      this.logger.info({ group: this.groupKey, displays: members, visit: record.id, trackId: record.visit.trackId, durationSec: Math.round(durationSec * 10) / 10, runs: record.visit.runs, eventSent: record.eventSent, reason: `${reason} (group closed)` }, 'visit ended');
    }
    this.queue.length = 0;
  }
}
