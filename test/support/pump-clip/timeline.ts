/**
 * Pure description of a synthetic pump-camera clip and its exact ground truth: where each
 * pasted vehicle is at any time, when it stands still, and which "visits" a zone sees.
 * The renderer (render.ts) draws exactly what these functions compute, so tests assert
 * against numbers derived here instead of hand-written expectations.
 */

/** `[x1, y1, x2, y2]` in frame pixels. */
export type Box = [number, number, number, number];

/** A vehicle cut out of a fixture photo: `image` is relative to the fixtures dir. */
export interface VehicleSource {
  image: string;
  box: Box;
}

/** Top-left corner of the pasted vehicle at time `t` (may lie off screen). */
export interface Keyframe {
  t: number;
  x: number;
  y: number;
}

export interface Vehicle {
  id: string;
  source: VehicleSource;
  /** On-screen width in pixels; the height keeps the crop's aspect. Both are made even. */
  width: number;
  /** On screen from the first keyframe's t to the last's, moving linearly between them. */
  keyframes: Keyframe[];
}

export interface BackgroundRect {
  x: number;
  y: number;
  w: number;
  h: number;
  color: string;
}

/** Synthetic, car-free background: a base colour, flat rectangles, then per-frame noise. */
export interface Background {
  color: string;
  rects: BackgroundRect[];
  /** ffmpeg `noise` strength (0 = none); applied to the whole frame, vehicles included. */
  noise: number;
}

export interface Scene {
  width: number;
  height: number;
  durationS: number;
  fps: number;
  background: Background;
  vehicles: Vehicle[];
}

export interface VehicleState {
  id: string;
  /** The whole pasted box, possibly partly off screen. */
  box: Box;
  /** `box` clipped to the frame: what a detector on the full frame can report. */
  visibleBox: Box;
  /** Share of the box's area that is on screen, 0..1. */
  visibleFraction: number;
  /** Bottom-centre of `visibleBox`: the point trackers and zones test. */
  anchor: [number, number];
  moving: boolean;
}

export interface Stop {
  from: number;
  to: number;
  box: Box;
}

/**
 * One vehicle's stay in a region. `start` is the time of the first frame at which the vehicle
 * is present there, `end` the time of the first frame at which it no longer is (or the clip's
 * end), so `dwellS = end - start` is the frame count over fps.
 */
export interface Visit {
  vehicleId: string;
  start: number;
  end: number;
  dwellS: number;
  /** When it came to rest inside the visit (the stop's start, or `start` when already parked); null when it only passed. */
  stoppedAt: number | null;
  stopBox: Box | null;
  kind: 'stop' | 'pass';
}

export interface VisitOptions {
  /** A stay counts as a visit from this many seconds of presence (default 2: a tracker confirms after ~1 s of matches). */
  minDwellS?: number;
  /** Present only while at least this share of the box is on screen (default 0.5: a detector rarely sees less). */
  minVisibleFraction?: number;
}

/** Overlay positions snap to even pixels (yuv420 chroma); the epsilon absorbs float time error. */
export const snapEven = (v: number): number => 2 * Math.floor((v + 1e-6) / 2);

export function vehicleSize(v: Pick<Vehicle, 'source' | 'width'>): { w: number; h: number } {
  const [x1, y1, x2, y2] = v.source.box;
  const w = snapEven(v.width);
  return { w, h: snapEven((w * (y2 - y1)) / (x2 - x1) + 1) };
}

/** Linear position at t (unsnapped) and whether the vehicle moves there; null when off the timeline. */
function positionAt(v: Vehicle, t: number): { x: number; y: number; moving: boolean } | null {
  const k = v.keyframes;
  const first = k[0];
  const last = k[k.length - 1];
  if (!first || !last || t < first.t - 1e-9 || t > last.t + 1e-9) return null;
  if (k.length === 1) return { x: first.x, y: first.y, moving: false };
  for (let i = 0; i < k.length - 1; i++) {
    const a = k[i]!;
    const b = k[i + 1]!;
    if (t < b.t || i === k.length - 2) {
      const f = b.t > a.t ? Math.min(1, Math.max(0, (t - a.t) / (b.t - a.t))) : 1;
      return { x: a.x + (b.x - a.x) * f, y: a.y + (b.y - a.y) * f, moving: a.x !== b.x || a.y !== b.y };
    }
  }
  return null;
}

export function vehicleStateAt(scene: Pick<Scene, 'width' | 'height'>, v: Vehicle, t: number): VehicleState | null {
  const p = positionAt(v, t);
  if (!p) return null;
  const { w, h } = vehicleSize(v);
  const x = snapEven(p.x);
  const y = snapEven(p.y);
  const box: Box = [x, y, x + w, y + h];
  const visibleBox: Box = [Math.max(0, box[0]), Math.max(0, box[1]), Math.min(scene.width, box[2]), Math.min(scene.height, box[3])];
  if (visibleBox[2] <= visibleBox[0] || visibleBox[3] <= visibleBox[1]) return null;
  const visibleFraction = ((visibleBox[2] - visibleBox[0]) * (visibleBox[3] - visibleBox[1])) / (w * h);
  return { id: v.id, box, visibleBox, visibleFraction, anchor: [(visibleBox[0] + visibleBox[2]) / 2, visibleBox[3]], moving: p.moving };
}

/** Every vehicle at least `minVisibleFraction` on screen at time t. */
export function vehiclesAt(scene: Scene, t: number, minVisibleFraction = 0.5): VehicleState[] {
  return scene.vehicles
    .map((v) => vehicleStateAt(scene, v, t))
    .filter((s): s is VehicleState => s !== null && s.visibleFraction >= minVisibleFraction);
}

/** The intervals during which the vehicle stands still on its timeline, with its box there. */
export function stopsOf(scene: Pick<Scene, 'width' | 'height'>, v: Vehicle): Stop[] {
  const out: Stop[] = [];
  const k = v.keyframes;
  for (let i = 0; i < k.length - 1; i++) {
    const a = k[i]!;
    const b = k[i + 1]!;
    if (a.x !== b.x || a.y !== b.y) continue;
    const prev = out[out.length - 1];
    if (prev && prev.to === a.t) prev.to = b.t;
    else out.push({ from: a.t, to: b.t, box: vehicleStateAt(scene, v, a.t)?.box ?? [0, 0, 0, 0] });
  }
  return out;
}

export function inRegion(point: [number, number], region: Box): boolean {
  return point[0] >= region[0] && point[0] <= region[2] && point[1] >= region[1] && point[1] <= region[3];
}

/** Time of frame n; frame n is what the renderer draws for t = n / fps. */
export const frameTime = (scene: Pick<Scene, 'fps'>, n: number): number => n / scene.fps;
export const frameCount = (scene: Pick<Scene, 'fps' | 'durationS'>): number => Math.round(scene.durationS * scene.fps);

/**
 * Visits to `region` (default: the whole frame), sampled at the clip's frame times. A vehicle is
 * present at a frame when at least `minVisibleFraction` of its box is on screen and the
 * bottom-centre of its on-screen box lies inside the region (bounds inclusive); a run of
 * present frames is a visit when it lasts at least `minDwellS`. The anchor is the full-frame
 * one: for a crop, a car straddling the crop's edge belongs to the side its bottom-centre is on.
 */
export function visitsIn(scene: Scene, region?: Box, options: VisitOptions = {}): Visit[] {
  const zone = region ?? [0, 0, scene.width, scene.height];
  const minDwellS = options.minDwellS ?? 2;
  const minVisible = options.minVisibleFraction ?? 0.5;
  const n = frameCount(scene);
  const visits: Visit[] = [];
  for (const v of scene.vehicles) {
    const stops = stopsOf(scene, v);
    let runStart = -1;
    const close = (endFrame: number) => {
      const start = frameTime(scene, runStart);
      const end = frameTime(scene, endFrame);
      runStart = -1;
      if (end - start < minDwellS - 1e-9) return;
      const stop = stops.find((s) => s.to > start && s.from < end);
      visits.push({
        vehicleId: v.id,
        start,
        end,
        dwellS: end - start,
        stoppedAt: stop ? Math.max(stop.from, start) : null,
        stopBox: stop ? stop.box : null,
        kind: stop ? 'stop' : 'pass',
      });
    };
    for (let i = 0; i < n; i++) {
      const s = vehicleStateAt(scene, v, frameTime(scene, i));
      const present = s !== null && s.visibleFraction >= minVisible && inRegion(s.anchor, zone);
      if (present && runStart < 0) runStart = i;
      else if (!present && runStart >= 0) close(i);
    }
    if (runStart >= 0) close(n);
  }
  return visits.sort((a, b) => a.start - b.start || a.vehicleId.localeCompare(b.vehicleId));
}
