/** Boxes and zones in the pixels of the frame the detector saw (the subscription's crop). */

/** [x1, y1, x2, y2]. */
export type Box = readonly [number, number, number, number];
export type Point = readonly [number, number];

export function area(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Where a vehicle stands: the bottom-centre of its box (the wheels touch the ground there). */
export function anchorOf(b: Box): Point {
  return [(b[0] + b[2]) / 2, b[3]];
}

/** Even-odd ray casting; a point on an edge may land either way, which does not matter here. */
export function insidePolygon(p: Point, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i]!;
    const [xj, yj] = polygon[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Whether the box touches (within `margin` pixels) the edge of a width × height frame. */
export function touchesEdge(b: Box, width: number, height: number, margin = 2): boolean {
  return b[0] <= margin || b[1] <= margin || b[2] >= width - margin || b[3] >= height - margin;
}
