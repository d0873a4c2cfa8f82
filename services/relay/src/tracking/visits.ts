/**
 * Vehicle visits of one frame group: a confirmed track whose anchor (box bottom-centre) is in
 * the zone and has come to rest there becomes a visit; the visit ends when its track is gone (lost for longer than the
 * tracker's timeout) or has stood outside the zone that long. A car parked for an hour is one
 * track, so one visit; a new car where the last one stood is a new track, so a new visit.
 * "At rest" is what tells a car arriving at the pump from one driving past on the road through
 * the same crop: its anchor moved less than a share of its width over the last second.
 *
 * Each visit keeps its best frame so far and says when a full pipeline run is due: the first
 * as soon as the car is seen well (confident, large, not cut by the frame edge) or after a
 * short wait on the best frame available; later ones on a clearly better frame, up to a
 * maximum. Pure: the caller feeds tracker updates and keeps the frames.
 */
import { anchorOf, area, insidePolygon, touchesEdge, type Box, type Point } from './geometry.js';
import type { Track, TrackerUpdate } from './tracker.js';

export interface VisitConfig {
  /** Polygon in frame pixels; undefined: the whole frame (the subscription's crop). */
  zone?: readonly Point[];
  /** Full pipeline runs per visit at most. */
  maxRuns: number;
  /** The first run waits at most this long for a good frame, then takes the best one. */
  maxWaitSec: number;
  /** A later run needs a frame this many times better than the last run's. */
  rerunGain: number;
  /** ...and at least this long after the last run. */
  minRerunIntervalSec: number;
  /** A frame is good enough for the first run from this detection score. */
  goodScore: number;
  /**
   * A track starts a visit only once its anchor has moved less than `stillShare` of its box
   * width over the last `stillSec` (0: at once): a car passing through the zone never rests.
   */
  stillSec: number;
  stillShare: number;
}

export const DEFAULT_VISIT_CONFIG: VisitConfig = {
  maxRuns: 3,
  maxWaitSec: 2,
  rerunGain: 1.25,
  minRerunIntervalSec: 2,
  goodScore: 0.6,
  // Detector jitter moves a parked car's anchor by ~5 % of its width; a car creeping in at
  // walking pace moves ~20 % of its width per second.
  stillSec: 1,
  stillShare: 0.15,
};

export interface Visit<F> {
  /** Unique within the group: `<groupKey>:<trackId>:<start>` is built by the caller. */
  readonly trackId: number;
  readonly startedAt: number;
  lastSeen: number;
  box: Box;
  className: string;
  runs: number;
  lastRunAt: number | null;
  lastRunQuality: number;
  best: { frame: F; box: Box; score: number; quality: number; at: number; good: boolean } | null;
  /** When its anchor left the zone (the track still seen); null while inside. */
  outsideSince: number | null;
  /** Its runs have not read what the pipeline reads (a plate): any better frame runs again. */
  wantsBetterRead?: boolean;
}

export interface VisitUpdate<F> {
  started: Visit<F>[];
  ended: Array<{ visit: Visit<F>; reason: 'track lost' | 'left the zone' }>;
  /** Visits whose next full run is due now, with the frame and box to run it on. */
  due: Array<{ visit: Visit<F>; frame: F; box: Box }>;
}

/**
 * How well a frame shows a vehicle: the detector's score times the square root of the box's
 * share of the frame (bigger is better, with diminishing returns), halved when the box
 * touches the frame edge (the car is cut off).
 */
export function frameQuality(box: Box, score: number, width: number, height: number): number {
  const share = width > 0 && height > 0 ? area(box) / (width * height) : 0;
  const q = score * Math.sqrt(Math.max(0, share));
  return touchesEdge(box, width, height) ? q / 2 : q;
}

export class VisitBook<F> {
  private readonly visits = new Map<number, Visit<F>>();
  /** Recent anchors of tracks in the zone that are no visit yet (tentative ones too, so a car already still when confirmed starts at once). */
  private readonly approach = new Map<number, Array<{ at: number; anchor: Point }>>();

  constructor(
    private readonly config: VisitConfig,
    /** Tracker timeout: how long a track may stand outside the zone before its visit ends. */
    private readonly outsideTimeoutSec: number,
  ) {}

  get current(): readonly Visit<F>[] {
    return [...this.visits.values()];
  }

  /** Feeds one tracker update for the frame `frame` (width × height) captured at `time`. */
  update(tracks: TrackerUpdate, frame: F, width: number, height: number, time: number): VisitUpdate<F> {
    const out: VisitUpdate<F> = { started: [], ended: [], due: [] };
    for (const t of tracks.removed) this.end(t.id, 'track lost', out);
    const alive = new Set<number>();
    for (const t of tracks.tracks) {
      alive.add(t.id);
      let visit = this.visits.get(t.id);
      const inZone = this.inZone(t.box);
      if (!visit) {
        const still = this.cameToRest(t, inZone, time);
        // Only a track seen at rest in the zone in this frame starts a visit.
        if (t.state === 'tentative' || !inZone || !t.matched || !still) continue;
        this.approach.delete(t.id);
        visit = { trackId: t.id, startedAt: time, lastSeen: time, box: t.box, className: t.className, runs: 0, lastRunAt: null, lastRunQuality: 0, best: null, outsideSince: null };
        this.visits.set(t.id, visit);
        out.started.push(visit);
      }
      if (!t.matched) continue;
      visit.lastSeen = time;
      visit.box = t.box;
      visit.className = t.className;
      if (inZone) visit.outsideSince = null;
      else {
        visit.outsideSince ??= time;
        if (time - visit.outsideSince > this.outsideTimeoutSec) {
          this.end(t.id, 'left the zone', out);
          continue;
        }
      }
      this.offer(visit, t, frame, width, height, time);
      const due = this.dueRun(visit, time);
      if (due) out.due.push(due);
    }
    for (const id of this.approach.keys()) if (!alive.has(id)) this.approach.delete(id);
    // A visit whose track matched nothing this frame may still be due (the wait ran out).
    for (const visit of this.visits.values()) {
      if (visit.lastSeen === time || out.due.some((d) => d.visit === visit)) continue;
      const due = this.dueRun(visit, time);
      if (due) out.due.push(due);
    }
    return out;
  }

  /** Records that a full run of the visit was sent (on its best frame). */
  markRun(visit: Visit<F>, time: number): void {
    visit.runs++;
    visit.lastRunAt = time;
    visit.lastRunQuality = visit.best?.quality ?? 0;
  }

  /** Ends every visit (the group closes). */
  endAll(): VisitUpdate<F>['ended'] {
    this.approach.clear();
    const out: VisitUpdate<F> = { started: [], ended: [], due: [] };
    for (const id of [...this.visits.keys()]) this.end(id, 'track lost', out);
    return out.ended;
  }

  /**
   * Records the anchor of a matched track in the zone; true when it moved less than
   * stillShare of its width since the newest anchor at least stillSec old.
   */
  private cameToRest(t: Track, inZone: boolean, time: number): boolean {
    if (!inZone) {
      this.approach.delete(t.id);
      return false;
    }
    if (!t.matched) return false;
    const { stillSec, stillShare } = this.config;
    if (stillSec <= 0) return true;
    const anchor = anchorOf(t.box);
    const samples = this.approach.get(t.id) ?? [];
    samples.push({ at: time, anchor });
    let ref = -1;
    for (let i = 0; i < samples.length; i++) if (time - samples[i]!.at >= stillSec - 1e-6) ref = i;
    // Older samples are never the reference again: the list stays about stillSec long.
    if (ref > 0) samples.splice(0, ref);
    this.approach.set(t.id, samples);
    if (ref < 0) return false;
    const from = samples[0]!.anchor;
    return Math.hypot(anchor[0] - from[0], anchor[1] - from[1]) <= stillShare * (t.box[2] - t.box[0]);
  }

  private inZone(box: Box): boolean {
    const zone = this.config.zone;
    return !zone || zone.length < 3 || insidePolygon(anchorOf(box), zone);
  }

  private end(trackId: number, reason: 'track lost' | 'left the zone', out: VisitUpdate<F>): void {
    const visit = this.visits.get(trackId);
    if (!visit) return;
    this.visits.delete(trackId);
    out.ended.push({ visit, reason });
  }

  private offer(visit: Visit<F>, t: Track, frame: F, width: number, height: number, time: number): void {
    const quality = frameQuality(t.box, t.score, width, height);
    if (visit.best && quality <= visit.best.quality) return;
    const good = t.score >= this.config.goodScore && !touchesEdge(t.box, width, height);
    visit.best = { frame, box: t.box, score: t.score, quality, at: time, good };
  }

  private dueRun(visit: Visit<F>, time: number): VisitUpdate<F>['due'][number] | null {
    const best = visit.best;
    if (!best || visit.runs >= this.config.maxRuns) return null;
    if (visit.runs === 0) {
      if (best.good || time - visit.startedAt >= this.config.maxWaitSec) return { visit, frame: best.frame, box: best.box };
      return null;
    }
    if (visit.lastRunAt !== null && time - visit.lastRunAt < this.config.minRerunIntervalSec) return null;
    const gain = visit.wantsBetterRead ? 1 : this.config.rerunGain;
    if (best.quality >= visit.lastRunQuality * gain && best.at > (visit.lastRunAt ?? -Infinity)) return { visit, frame: best.frame, box: best.box };
    return null;
  }
}
