/**
 * A multi-object tracker for one frame group, after ByteTrack (Zhang et al., 2022): every
 * detection box counts, the confident ones first. Per frame:
 * 1. duplicate boxes of one object (per-class NMS keeps a `car` and a `truck` box for the same
 *    van) are merged, class-agnostically, keeping both class votes;
 * 2. high-score boxes are matched to confirmed and lost tracks by IoU with the track's
 *    predicted box;
 * 3. low-score boxes are matched to the tracks still unmatched, only to keep them alive (a car
 *    half hidden by a person scores low but is still there);
 * 4. remaining high boxes are matched to tentative tracks; tentative tracks left unmatched
 *    are dropped, confident boxes left unmatched start tentative tracks.
 * Time is in seconds and drives confirmation and loss, so the same settings work at 2 fps
 * RTSP and at one snapshot every 5 s. Pure: no clock, no I/O.
 */
import { iou, type Box } from './geometry.js';

export interface TrackerConfig {
  /** Boxes scoring at least this are matched first and may start tracks (ByteTrack: 0.5). */
  highScore: number;
  /** Boxes below highScore down to this only keep existing tracks alive (ByteTrack: 0.1). */
  lowScore: number;
  /** An unmatched box starts a track only from this score (ByteTrack: highScore + 0.1). */
  newTrackScore: number;
  /** Least IoU to match a high box to a track (ByteTrack's 0.8 cost threshold: IoU 0.2). */
  matchIou: number;
  /** Least IoU to match a low box (ByteTrack's second stage: 0.5). */
  lowMatchIou: number;
  /** Least IoU to match a tentative track (ByteTrack's unconfirmed stage: 0.3). */
  tentativeMatchIou: number;
  /** Boxes overlapping this much are one object seen as two classes. */
  duplicateIou: number;
  /** A track is confirmed after this many consecutive matches... */
  confirmHits: number;
  /** ...spanning at least this many seconds (a one-frame flicker at 10 fps is no car). */
  confirmSeconds: number;
  /** A confirmed track unmatched for longer than this is gone (longer than an occlusion). */
  lostTimeoutSec: number;
  /** Velocity is extrapolated at most this far; a stopped car does not drift off its spot. */
  maxPredictSec: number;
}

/**
 * Published defaults (ByteTrack: 0.5 / 0.1 / 0.6, IoU 0.2; supervision starts tracks from
 * 0.25; OC-SORT's time-based loss) tuned on the test clips: a parked car seen by a 320-input
 * YOLO11n through a 1080p camera scores 0.44-0.55, so tracks start and are matched from 0.4.
 */
export const DEFAULT_TRACKER_CONFIG: TrackerConfig = {
  highScore: 0.4,
  lowScore: 0.1,
  newTrackScore: 0.4,
  matchIou: 0.2,
  lowMatchIou: 0.5,
  tentativeMatchIou: 0.3,
  duplicateIou: 0.7,
  confirmHits: 2,
  confirmSeconds: 1,
  lostTimeoutSec: 15,
  maxPredictSec: 2,
};

export interface TrackInput {
  box: Box;
  score: number;
  className: string;
}

export type TrackState = 'tentative' | 'confirmed' | 'lost';

/** A track as of one update: a copy, so a caller may keep it while the tracker moves on. */
export interface Track {
  readonly id: number;
  readonly state: TrackState;
  readonly box: Box;
  readonly score: number;
  /** The class with the highest summed score over the track's matches. */
  readonly className: string;
  /** Matches so far. */
  readonly hits: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** Whether a box matched it in the latest frame. */
  readonly matched: boolean;
}

interface LiveTrack {
  readonly id: number;
  state: TrackState;
  box: Box;
  score: number;
  /** The class with the highest summed score over the track's matches. */
  className: string;
  /** Consecutive matches while tentative, all matches once confirmed. */
  hits: number;
  firstSeen: number;
  lastSeen: number;
  /** Whether a box matched it in the latest frame. */
  matched: boolean;
  /** Box velocity in pixels per second (x1, y1, x2, y2). */
  velocity: [number, number, number, number];
  classVotes: Map<string, number>;
}

export interface TrackerUpdate {
  /** Tracks alive after this frame (tentative, confirmed and lost). */
  tracks: readonly Track[];
  /** Tracks that became confirmed in this frame. */
  confirmed: readonly Track[];
  /** Confirmed tracks that were removed in this frame (lost for longer than the timeout). */
  removed: readonly Track[];
}

interface Candidate extends TrackInput {
  votes: Map<string, number>;
}

export class Tracker {
  private tracks: LiveTrack[] = [];
  private nextId = 1;

  constructor(readonly config: TrackerConfig = DEFAULT_TRACKER_CONFIG) {}

  get active(): readonly Track[] {
    return this.tracks.map(view);
  }

  /** Feeds the detections of the frame captured at `time` (seconds, increasing). */
  update(detections: readonly TrackInput[], time: number): TrackerUpdate {
    const c = this.config;
    const candidates = mergeDuplicates(detections.filter((d) => d.score >= c.lowScore && validBox(d.box)), c.duplicateIou);
    const high = candidates.filter((d) => d.score >= c.highScore);
    const low = candidates.filter((d) => d.score < c.highScore);
    for (const t of this.tracks) t.matched = false;

    const established = this.tracks.filter((t) => t.state !== 'tentative');
    const tentative = this.tracks.filter((t) => t.state === 'tentative');
    const confirmed: LiveTrack[] = [];
    const apply = (t: LiveTrack, d: Candidate): void => {
      if (this.match(t, d, time)) confirmed.push(t);
    };

    const first = associate(established, high, c.matchIou, time, c.maxPredictSec);
    first.pairs.forEach(([t, d]) => apply(t, d));
    const second = associate(first.tracks, low, c.lowMatchIou, time, c.maxPredictSec);
    second.pairs.forEach(([t, d]) => apply(t, d));
    const third = associate(tentative, first.detections, c.tentativeMatchIou, time, c.maxPredictSec);
    third.pairs.forEach(([t, d]) => apply(t, d));

    const removed: LiveTrack[] = [];
    const kept: LiveTrack[] = [];
    for (const t of this.tracks) {
      if (t.matched) kept.push(t);
      else if (t.state === 'tentative') continue; // ByteTrack drops an unconfirmed track at its first miss
      else if (time - t.lastSeen > c.lostTimeoutSec) removed.push(t);
      else {
        t.state = 'lost';
        kept.push(t);
      }
    }
    for (const d of third.detections) {
      if (d.score < c.newTrackScore) continue;
      const t: LiveTrack = { id: this.nextId++, state: 'tentative', box: d.box, score: d.score, className: d.className, hits: 1, firstSeen: time, lastSeen: time, matched: true, velocity: [0, 0, 0, 0], classVotes: new Map(d.votes) };
      if (c.confirmHits <= 1 && c.confirmSeconds <= 0) {
        t.state = 'confirmed';
        confirmed.push(t);
      }
      kept.push(t);
    }
    this.tracks = kept;
    return { tracks: kept.map(view), confirmed: confirmed.map(view), removed: removed.map(view) };
  }

  /** Updates a track with its matched box; true when this match confirmed it. */
  private match(t: LiveTrack, d: Candidate, time: number): boolean {
    const dt = time - t.lastSeen;
    if (dt > 0) {
      // Smoothed velocity: half the new measurement, half the old estimate.
      const v = d.box.map((x, i) => (x - t.box[i]!) / dt) as [number, number, number, number];
      t.velocity = t.velocity.map((old, i) => 0.5 * old + 0.5 * v[i]!) as [number, number, number, number];
    }
    t.box = d.box;
    t.score = d.score;
    t.lastSeen = time;
    t.matched = true;
    t.hits++;
    for (const [name, score] of d.votes) t.classVotes.set(name, (t.classVotes.get(name) ?? 0) + score);
    t.className = topVote(t.classVotes);
    if (t.state === 'lost') t.state = 'confirmed';
    if (t.state === 'tentative' && t.hits >= this.config.confirmHits && time - t.firstSeen >= this.config.confirmSeconds) {
      t.state = 'confirmed';
      return true;
    }
    return false;
  }
}

function view(t: LiveTrack): Track {
  return { id: t.id, state: t.state, box: t.box, score: t.score, className: t.className, hits: t.hits, firstSeen: t.firstSeen, lastSeen: t.lastSeen, matched: t.matched };
}

function validBox(b: Box): boolean {
  return b.every(Number.isFinite) && b[2] > b[0] && b[3] > b[1];
}

function topVote(votes: ReadonlyMap<string, number>): string {
  let best = '';
  let bestScore = -Infinity;
  for (const [name, score] of votes) {
    if (score > bestScore) {
      best = name;
      bestScore = score;
    }
  }
  return best;
}

/** Where the track's box should be at `time`: its last box moved by its velocity, briefly. */
function predictedBox(t: LiveTrack, time: number, maxPredictSec: number): Box {
  const dt = Math.min(Math.max(0, time - t.lastSeen), maxPredictSec);
  if (dt === 0) return t.box;
  return t.box.map((x, i) => x + t.velocity[i]! * dt) as unknown as Box;
}

/** Class-agnostic NMS over one frame's boxes: the strongest box stands for its duplicates. */
export function mergeDuplicates(detections: readonly TrackInput[], duplicateIou: number): Candidate[] {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const out: Candidate[] = [];
  for (const d of sorted) {
    const same = out.find((k) => iou(k.box, d.box) >= duplicateIou);
    if (same) same.votes.set(d.className, (same.votes.get(d.className) ?? 0) + d.score);
    else out.push({ ...d, votes: new Map([[d.className, d.score]]) });
  }
  return out;
}

/**
 * Greedy association, highest IoU first. With the handful of vehicles a pump camera sees,
 * greedy and optimal (Hungarian) assignments agree; greedy needs no cost matrix solver.
 * The IoU is the better of the predicted and the last box, so a car that stops suddenly
 * still matches where it stood.
 */
function associate(tracks: readonly LiveTrack[], detections: readonly Candidate[], minIou: number, time: number, maxPredictSec: number) {
  const pairs: Array<[LiveTrack, Candidate, number]> = [];
  for (const t of tracks) {
    const predicted = predictedBox(t, time, maxPredictSec);
    for (const d of detections) {
      const overlap = Math.max(iou(predicted, d.box), iou(t.box, d.box));
      if (overlap >= minIou) pairs.push([t, d, overlap]);
    }
  }
  pairs.sort((a, b) => b[2] - a[2]);
  const usedTracks = new Set<LiveTrack>();
  const usedDetections = new Set<Candidate>();
  const matched: Array<[LiveTrack, Candidate]> = [];
  for (const [t, d] of pairs) {
    if (usedTracks.has(t) || usedDetections.has(d)) continue;
    usedTracks.add(t);
    usedDetections.add(d);
    matched.push([t, d]);
  }
  return { pairs: matched, tracks: tracks.filter((t) => !usedTracks.has(t)), detections: detections.filter((d) => !usedDetections.has(d)) };
}
