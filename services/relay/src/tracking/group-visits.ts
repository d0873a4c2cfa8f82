/**
 * The visits of one frame group, from detect-stage answers to CMS events. Pure: the frame
 * group feeds it detections and full-run answers, and does what it says.
 * - detections -> tracker -> visit book: visits start and end, full runs fall due;
 * - a full run's flat detection -> fusion over the visit's runs -> the first run's answer is
 *   the visit's one `imageDetection`, a later run that changes a fused attribute a `patchSession`.
 * Visit ids are the idempotency key of the full runs (the initial record and actions happen
 * once per visit, however often a run is retried), so they carry a random per-group prefix:
 * track ids restart at 1 when the relay restarts, a visit id never repeats.
 */
import { randomBytes } from 'node:crypto';
import type { FlatDetection } from '@detector-worker/shared/protocol/messages';
import type { TrackingConfig } from '@detector-worker/shared/pipeline/schema';
import { addReads, changedValues, fused, type AttributeRead, type AttributeVotes } from './fusion.js';
import { fusePlates, MAX_FUSED_READS, type PlateRead } from './plate-fusion.js';
import type { Box, Point } from './geometry.js';
import { DEFAULT_TRACKER_CONFIG, Tracker, type TrackInput, type TrackerConfig } from './tracker.js';
import { DEFAULT_VISIT_CONFIG, VisitBook, type Visit, type VisitConfig } from './visits.js';

export interface VisitRecord<F> {
  id: string;
  visit: Visit<F>;
  votes: AttributeVotes;
  /** Every plate read of its runs, fused by similarity rather than by vote. */
  plateReads: PlateRead[];
  /** The flat detection of the latest full run that found the vehicle, with fused attributes. */
  detection: FlatDetection | null;
  eventSent: boolean;
  runsAnswered: number;
}

export interface FullRunRequest<F> {
  visitId: string;
  frame: F;
  box: Box;
}

export interface DetectionsOutcome<F> {
  started: VisitRecord<F>[];
  ended: Array<{ record: VisitRecord<F>; reason: string; durationSec: number }>;
  due: FullRunRequest<F>[];
}

export type RunOutcome = { kind: 'event'; detection: FlatDetection } | { kind: 'patch'; changed: FlatDetection } | { kind: 'none'; why: string };

/** Tracker and visit settings from a pipeline's `tracking` object over the defaults. */
export function trackingSettings(t: TrackingConfig | null | undefined, width: number, height: number): { enabled: boolean; tracker: TrackerConfig; visits: VisitConfig } {
  const tracker: TrackerConfig = { ...DEFAULT_TRACKER_CONFIG };
  const visits: VisitConfig = { ...DEFAULT_VISIT_CONFIG };
  if (!t) return { enabled: true, tracker, visits };
  for (const key of ['highScore', 'lowScore', 'newTrackScore', 'matchIou', 'confirmHits', 'confirmSeconds', 'lostTimeoutSec'] as const) {
    const v = t[key];
    if (v !== undefined) tracker[key] = v;
  }
  if (t.maxRuns !== undefined) visits.maxRuns = t.maxRuns;
  if (t.stillSec !== undefined) visits.stillSec = t.stillSec;
  if (t.stillShare !== undefined) visits.stillShare = t.stillShare;
  if (t.maxWaitSec !== undefined) visits.maxWaitSec = t.maxWaitSec;
  if (t.rerunGain !== undefined) visits.rerunGain = t.rerunGain;
  if (t.zone) visits.zone = zoneInPixels(t.zone, width, height);
  return { enabled: t.enabled !== false, tracker, visits };
}

/** A zone whose values are all within 0..1 is normalised to the frame; otherwise pixels. */
export function zoneInPixels(zone: readonly (readonly [number, number])[], width: number, height: number): Point[] {
  const normalised = zone.every(([x, y]) => x <= 1 && y <= 1);
  return zone.map(([x, y]) => (normalised ? [x * width, y * height] : [x, y]) as Point);
}

/** The plate fields of the CMS detection: fused by plate-fusion.ts, not by vote. */
const PLATE_TEXT = 'licensePlateText';
const PLATE_CONFIDENCE = 'licensePlateConfidence';

/** Classifier reads in a flat detection: `key` with `keyConfidence`, plus the class itself. */
export function readsOf(detection: FlatDetection): Record<string, AttributeRead> {
  const reads: Record<string, AttributeRead> = {};
  const base = typeof detection.confidence === 'number' ? detection.confidence : 1;
  for (const [key, value] of Object.entries(detection)) {
    if (typeof value !== 'string' || key.endsWith('Confidence') || key === PLATE_TEXT) continue;
    const c = detection[`${key}Confidence`];
    reads[key] = { value, confidence: typeof c === 'number' ? c : base };
  }
  return reads;
}

export class GroupVisits<F> {
  readonly tracker: Tracker;
  private readonly book: VisitBook<F>;
  private readonly records = new Map<number, VisitRecord<F>>();
  private readonly byId = new Map<string, VisitRecord<F>>();
  /** Ended visits whose first run is still out: its answer is still their one event. */
  private readonly ending = new Map<string, VisitRecord<F>>();
  private readonly prefix = randomBytes(4).toString('hex');

  constructor(trackerConfig: TrackerConfig, visitConfig: VisitConfig) {
    this.tracker = new Tracker(trackerConfig);
    this.book = new VisitBook<F>(visitConfig, trackerConfig.lostTimeoutSec);
  }

  get current(): readonly VisitRecord<F>[] {
    return [...this.records.values()];
  }

  /** One detect-stage answer for `frame` (width × height pixels) captured at `time` seconds. */
  onDetections(detections: readonly TrackInput[], frame: F, width: number, height: number, time: number): DetectionsOutcome<F> {
    const update = this.book.update(this.tracker.update(detections, time), frame, width, height, time);
    const out: DetectionsOutcome<F> = { started: [], ended: [], due: [] };
    for (const visit of update.started) {
      const record: VisitRecord<F> = { id: `v-${this.prefix}-${visit.trackId}`, visit, votes: new Map(), plateReads: [], detection: null, eventSent: false, runsAnswered: 0 };
      this.records.set(visit.trackId, record);
      this.byId.set(record.id, record);
      out.started.push(record);
    }
    for (const { visit, reason } of update.ended) {
      const record = this.records.get(visit.trackId);
      if (!record) continue;
      this.records.delete(visit.trackId);
      this.byId.delete(record.id);
      this.keepUntilAnswered(record);
      out.ended.push({ record, reason, durationSec: visit.lastSeen - visit.startedAt });
    }
    for (const due of update.due) {
      const record = this.records.get(due.visit.trackId);
      if (!record) continue;
      // Counted when due: the group sends it now, and a slow answer must not make it due again.
      this.book.markRun(due.visit, time);
      out.due.push({ visitId: record.id, frame: due.frame, box: due.box });
    }
    return out;
  }

  /**
   * A full run of a visit answered; what the CMS should get. `readsPlates`: the pipeline has a
   * plate reader, so a visit without a plate yet asks for another run on any better frame.
   */
  onFullRun(visitId: string, detection: FlatDetection | null, readsPlates = false): RunOutcome {
    const record = this.byId.get(visitId) ?? this.ending.get(visitId);
    if (!record) return { kind: 'none', why: 'the visit already ended' };
    if (this.ending.has(visitId) && (detection || record.runsAnswered + 1 >= record.visit.runs)) this.ending.delete(visitId);
    record.runsAnswered++;
    if (!detection) return { kind: 'none', why: 'the full run found no vehicle at the focus box' };
    const before = fused(record.votes);
    addReads(record.votes, readsOf(detection));
    const after = fused(record.votes);
    const merged: FlatDetection = { ...detection };
    for (const [key, read] of Object.entries(after)) {
      merged[key] = read.value;
      if (key !== 'class' && `${key}Confidence` in detection) merged[`${key}Confidence`] = read.confidence;
    }
    // Plates: one bad frame must not decide, and similar reads (DR68651 / DR6865I) are one plate.
    const plateBefore = fusePlates(record.plateReads);
    const text = detection[PLATE_TEXT];
    if (typeof text === 'string' && text && record.plateReads.length < MAX_FUSED_READS) {
      const c = detection[PLATE_CONFIDENCE];
      record.plateReads.push({ text, confidence: typeof c === 'number' ? c : typeof detection.confidence === 'number' ? detection.confidence : 1 });
    }
    const plate = fusePlates(record.plateReads);
    if (plate) {
      merged[PLATE_TEXT] = plate.text;
      merged[PLATE_CONFIDENCE] = plate.confidence;
      if (plate.text !== plateBefore?.text) after[PLATE_TEXT] = { value: plate.text, confidence: plate.confidence };
      if (plateBefore) before[PLATE_TEXT] = { value: plateBefore.text, confidence: plateBefore.confidence };
    }
    record.visit.wantsBetterRead = readsPlates && !plate;
    record.detection = merged;
    if (!record.eventSent) {
      record.eventSent = true;
      return { kind: 'event', detection: merged };
    }
    const changed = changedValues(before, after);
    if (changed.length === 0) return { kind: 'none', why: 'no fused attribute changed' };
    const patch: FlatDetection = {};
    for (const key of changed) {
      patch[key] = merged[key] ?? null;
      const c = merged[key === PLATE_TEXT ? PLATE_CONFIDENCE : `${key}Confidence`];
      if (c !== undefined) patch[key === PLATE_TEXT ? PLATE_CONFIDENCE : `${key}Confidence`] = c;
    }
    return { kind: 'patch', changed: patch };
  }

  /** A visit that ended before its event went out keeps its record while a run may answer. */
  private keepUntilAnswered(record: VisitRecord<F>): void {
    if (record.eventSent || record.runsAnswered >= record.visit.runs) return;
    this.ending.set(record.id, record);
    // Bounded: answers that never come must not pile records up.
    if (this.ending.size > 32) this.ending.delete(this.ending.keys().next().value!);
  }

  /** Ends every visit (the group closes). */
  endAll(): DetectionsOutcome<F>['ended'] {
    const out: DetectionsOutcome<F>['ended'] = [];
    for (const { visit, reason } of this.book.endAll()) {
      const record = this.records.get(visit.trackId);
      if (!record) continue;
      out.push({ record, reason, durationSec: visit.lastSeen - visit.startedAt });
    }
    this.records.clear();
    this.byId.clear();
    this.ending.clear();
    return out;
  }
}
