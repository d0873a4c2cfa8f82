/**
 * Ready-made pump scenes for end-to-end tests and benchmarks. Vehicle crops and sizes were
 * tuned so YOLOv8n (fixtures/models/yolov8n_fp32.onnx) sees every vehicle whenever it is fully
 * on screen (see test/pump-clip.test.ts), and the background alone yields no detection.
 * Ground truth comes from visitsIn(scene, zone); the comments state what it returns.
 */
import { vehicleSize, type Background, type Box, type Keyframe, type Scene, type VehicleSource } from './timeline.js';

/** Fixture crops (boxes from fixtures/PROVENANCE.md, YOLOv8n detections of the photos). */
export const VEHICLES = {
  /** White sedan, three-quarter front view; car 0.92. */
  whiteSedan: { image: 'images/parking_plate_1080p.jpg', box: [585, 331, 1904, 985] },
  /** Red roadster from behind; car 0.82–0.9 when pasted at 360 px (the full photo says truck 0.83). */
  redRoadster: { image: 'images/car_rear_plate_1280.jpg', box: [333, 224, 1217, 650] },
  /** White hatchback, side-front view from a dashcam; car 0.84. */
  whiteHatch: { image: 'images/dashcam_parked_1640x590.jpg', box: [268, 309, 492, 397] },
  /** Small parked car from the same dashcam; car 0.88. */
  smallCar: { image: 'images/dashcam_parked_1640x590.jpg', box: [900, 291, 1053, 369] },
} satisfies Record<string, VehicleSource>;

/** Zones of the 1280x720 presets. */
export const PUMP_ZONES = {
  full: [0, 0, 1280, 720] as Box,
  /** The left pump's crop. */
  leftHalf: [0, 0, 640, 720] as Box,
  /** The forecourt without the road lane at the top. */
  lowerHalf: [0, 360, 1280, 720] as Box,
};

/**
 * A forecourt seen from a pole: sky strip, a two-lane road at the top, a kerb, concrete with
 * two pump columns. Flat shapes only (nothing a COCO detector mistakes for a vehicle), laid
 * out for 1280x720 and scaled to other sizes.
 */
export function forecourtBackground(width = 1280, height = 720, noise = 6): Background {
  const sx = width / 1280;
  const sy = height / 720;
  const r = (x: number, y: number, w: number, h: number, color: string) => ({
    x: Math.round(x * sx), y: Math.round(y * sy), w: Math.max(1, Math.round(w * sx)), h: Math.max(1, Math.round(h * sy)), color,
  });
  return {
    color: '0x6b6d70',
    noise,
    rects: [
      r(0, 0, 1280, 40, '0x8fa8c0'),
      r(0, 40, 1280, 190, '0x3c3e42'),
      r(0, 133, 1280, 4, '0xd8d8d0'),
      r(0, 230, 1280, 6, '0xb0b0a8'),
      r(600, 300, 60, 120, '0x9a9a9a'),
      r(600, 300, 60, 14, '0xc03030'),
      r(1220, 260, 40, 100, '0x9a9a9a'),
    ],
  };
}

export interface VisitPath {
  /** Where the vehicle stands (top-left of its box). */
  x: number;
  y: number;
  width: number;
  frameWidth: number;
  from: 'left' | 'right';
  /** Edge it leaves by; omit to stay until `leaveAt`. */
  to?: 'left' | 'right';
  enterAt: number;
  stopAt: number;
  leaveAt: number;
  goneAt?: number;
}

/** Enter fully off screen at `enterAt`, arrive at (x, y) at `stopAt`, stand until `leaveAt`, then leave by `to` until `goneAt`. */
export function visitPath(p: VisitPath): Keyframe[] {
  const off = (side: 'left' | 'right') => (side === 'left' ? -p.width : p.frameWidth);
  const k: Keyframe[] = [
    { t: p.enterAt, x: off(p.from), y: p.y },
    { t: p.stopAt, x: p.x, y: p.y },
    { t: p.leaveAt, x: p.x, y: p.y },
  ];
  if (p.to && p.goneAt !== undefined) k.push({ t: p.goneAt, x: off(p.to), y: p.y });
  return k;
}

/**
 * Geometry of the default pump scene, shared with checks that build shorter scenes. A and D
 * stand with their bottom-centres at (320, 678): A's box is [80,440,560,678], D's [100,506,540,678].
 */
export const PUMP_LAYOUT = {
  pumpAnchor: { x: 320, bottom: 678 },
  A: { source: VEHICLES.whiteSedan, width: 480 },
  B: { source: VEHICLES.redRoadster, width: 360, x: 820, y: 216 },
  C: { source: VEHICLES.smallCar, width: 200, y: 80 },
  D: { source: VEHICLES.whiteHatch, width: 440 },
};

/** Top-left at which a vehicle of this source and width stands at the left pump. */
export function pumpStand(v: { source: VehicleSource; width: number }): { x: number; y: number } {
  const { w, h } = vehicleSize(v);
  return { x: PUMP_LAYOUT.pumpAnchor.x - w / 2, y: PUMP_LAYOUT.pumpAnchor.bottom - h };
}

/**
 * The default pump scene: 60 s at 10 fps, 1280x720.
 * - A (white sedan, 480 px) drives in from the left at 5 s, stops at the left pump by 8 s,
 *   stands until 28 s, drives out to the right by 31 s (passing below B).
 * - B (red roadster, 360 px) is parked in the right half the whole time.
 * - C (small car, 200 px) passes right-to-left along the top lane from 35 s to 40 s, dawdling
 *   over the right half and speeding over the left.
 * - D (white hatchback, 440 px) enters from the left at 40 s, stops where A stood by 43 s and
 *   stays to the end.
 *
 * Ground truth, visitsIn() with the defaults (present = ≥50 % on screen, ≥2 s):
 * - full frame: B 0–60 (stop, stoppedAt 0); A 6.3–30.5 (stop at 8); C 35.6–39.9 (pass, 4.3 s);
 *   D 41.3–60 (stop at 43).
 * - left half [0,0,640,720]: A 6.3–28.9 (stop at 8); D 41.3–60 (stop at 43). B's anchor is at
 *   x=1000; C's is there 38.8–39.9 only, below minDwellS.
 * - lower half [0,360,1280,720]: A, B and D as in the full frame; C's lane is above it.
 */
export function pumpScene(): Scene {
  const width = 1280;
  const height = 720;
  const durationS = 60;
  const { A, B, C, D } = PUMP_LAYOUT;
  return {
    width, height, durationS, fps: 10,
    background: forecourtBackground(width, height),
    vehicles: [
      { id: 'A', ...A, keyframes: visitPath({ ...pumpStand(A), width: A.width, frameWidth: width, from: 'left', to: 'right', enterAt: 5, stopAt: 8, leaveAt: 28, goneAt: 31 }) },
      { id: 'B', source: B.source, width: B.width, keyframes: [{ t: 0, x: B.x, y: B.y }, { t: durationS, x: B.x, y: B.y }] },
      { id: 'C', source: C.source, width: C.width, keyframes: [{ t: 35, x: width, y: C.y }, { t: 38.8, x: 540, y: C.y }, { t: 40, x: -C.width, y: C.y }] },
      { id: 'D', ...D, keyframes: visitPath({ ...pumpStand(D), width: D.width, frameWidth: width, from: 'left', enterAt: 40, stopAt: 43, leaveAt: durationS }) },
    ],
  };
}

export interface MostlyEmptyOptions {
  durationS?: number;
  fps?: number;
  /** One visit per period, centred in it. */
  everyS?: number;
}

/**
 * For capacity work: a forecourt that is empty most of the time. Every `everyS` seconds
 * (default 60) one car drives in from the left at period start + everyS/2 − 6, stops at the
 * left pump 3 s later, stands 6 s and drives out to the right in 3 s; sedan and hatchback
 * alternate. Default 120 s at 10 fps: cars on screen 24–36 and 84–96.
 * Ground truth: each car is one 'stop' visit (stoppedAt 27, 87) in the full frame (25.3–35.5,
 * 85.3–95.5) and in the left half (25.3–33.9, 85.3–93.9); nothing else is on screen.
 */
export function mostlyEmptyScene(options: MostlyEmptyOptions = {}): Scene {
  const width = 1280;
  const height = 720;
  const durationS = options.durationS ?? 120;
  const everyS = options.everyS ?? 60;
  // A visit takes 12 s on screen; shorter periods would stack cars on the same pump.
  if (!(everyS >= 12)) throw new Error(`mostlyEmptyScene: everyS must be at least 12, got ${everyS}`);
  const vehicles: Scene['vehicles'] = [];
  for (let i = 0; (i + 1) * everyS <= durationS + 1e-9; i++) {
    const car = i % 2 === 0 ? PUMP_LAYOUT.A : PUMP_LAYOUT.D;
    const enterAt = i * everyS + everyS / 2 - 6;
    vehicles.push({
      id: `car${i + 1}`, ...car,
      keyframes: visitPath({ ...pumpStand(car), width: car.width, frameWidth: width, from: 'left', to: 'right', enterAt, stopAt: enterAt + 3, leaveAt: enterAt + 9, goneAt: enterAt + 12 }),
    });
  }
  return { width, height, durationS, fps: options.fps ?? 10, background: forecourtBackground(width, height), vehicles };
}
