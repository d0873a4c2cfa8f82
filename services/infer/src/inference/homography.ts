/**
 * Perspective rectification of a quadrilateral (a plate seen at an angle, from a detector's
 * four corners) to a flat rectangle: the 3x3 homography from four point pairs, and a
 * bilinear warp over raw interleaved pixels. Pure maths, so it is tested on known shapes.
 */

export type Point = readonly [number, number];
/** Row-major 3x3, h[8] = 1. */
export type Homography = Float64Array;

/** Solves A x = b in place (Gaussian elimination, partial pivoting); null when singular. */
function solve(a: number[][], b: number[]): number[] | null {
  const n = b.length;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    if (Math.abs(a[pivot]![col]!) < 1e-12) return null;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    [b[col], b[pivot]] = [b[pivot]!, b[col]!];
    for (let r = col + 1; r < n; r++) {
      const f = a[r]![col]! / a[col]![col]!;
      if (f === 0) continue;
      for (let c = col; c < n; c++) a[r]![c]! -= f * a[col]![c]!;
      b[r]! -= f * b[col]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let c = r + 1; c < n; c++) s -= a[r]![c]! * x[c]!;
    x[r] = s / a[r]![r]!;
  }
  return x;
}

/** The homography H with H·from[i] ∝ to[i]; null for degenerate quads (three corners on a line). */
export function solveHomography(from: readonly Point[], to: readonly Point[]): Homography | null {
  if (from.length !== 4 || to.length !== 4) return null;
  const a: number[][] = [];
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i]!;
    const [u, v] = to[i]!;
    a.push([x, y, 1, 0, 0, 0, -u * x, -u * y]);
    b.push(u);
    a.push([0, 0, 0, x, y, 1, -v * x, -v * y]);
    b.push(v);
  }
  if (a.flat().some((n) => !Number.isFinite(n)) || b.some((n) => !Number.isFinite(n))) return null;
  const x = solve(a, b);
  return x ? Float64Array.from([...x, 1]) : null;
}

export function applyHomography(h: Homography, [x, y]: Point): [number, number] {
  const w = h[6]! * x + h[7]! * y + h[8]!;
  return [(h[0]! * x + h[1]! * y + h[2]!) / w, (h[3]! * x + h[4]! * y + h[5]!) / w];
}

/** Corners pushed away from their centroid so each side gains `margin` of the quad's size. */
export function expandQuad(corners: readonly Point[], margin: number): Point[] {
  const cx = corners.reduce((s, p) => s + p[0], 0) / corners.length;
  const cy = corners.reduce((s, p) => s + p[1], 0) / corners.length;
  const k = 1 + 2 * margin;
  return corners.map(([x, y]) => [cx + (x - cx) * k, cy + (y - cy) * k] as const);
}

const dist = (a: Point, b: Point): number => Math.hypot(a[0] - b[0], a[1] - b[1]);

/**
 * Size of the flat rectangle for corners in order top-left, top-right, bottom-right,
 * bottom-left: the longer of each pair of opposite sides, so no side is squeezed.
 */
export function quadSize(corners: readonly Point[], maxSide = 2048): { width: number; height: number } {
  const [tl, tr, br, bl] = corners as [Point, Point, Point, Point];
  const width = Math.max(dist(tl, tr), dist(bl, br));
  const height = Math.max(dist(tl, bl), dist(tr, br));
  const clamp = (v: number) => Math.max(1, Math.min(maxSide, Math.round(Number.isFinite(v) ? v : 1)));
  return { width: clamp(width), height: clamp(height) };
}

/** Whether four corners (TL, TR, BR, BL) form a convex quad with that winding and some area. */
export function isUsableQuad(corners: readonly Point[]): boolean {
  if (corners.length !== 4 || corners.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))) return false;
  let sign = 0;
  for (let i = 0; i < 4; i++) {
    const a = corners[i]!;
    const b = corners[(i + 1) % 4]!;
    const c = corners[(i + 2) % 4]!;
    const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    if (Math.abs(cross) < 1e-6) return false;
    if (sign === 0) sign = Math.sign(cross);
    else if (Math.sign(cross) !== sign) return false;
  }
  return true;
}

/**
 * Warps the quad `corners` (TL, TR, BR, BL in source pixels) of an interleaved image to a
 * `width`x`height` rectangle. Each destination pixel samples the source bilinearly; samples
 * outside the image take the nearest edge pixel. Returns null for a degenerate quad.
 */
export function warpQuad(src: Uint8Array, srcW: number, srcH: number, channels: number, corners: readonly Point[], width: number, height: number): Uint8Array | null {
  const rect: Point[] = [
    [0, 0],
    [width, 0],
    [width, height],
    [0, height],
  ];
  // Destination -> source, so every destination pixel is written exactly once.
  const h = solveHomography(rect, corners);
  if (!h) return null;
  const out = new Uint8Array(width * height * channels);
  const maxX = srcW - 1;
  const maxY = srcH - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Pixel centres: destination (x+0.5) maps to a source position, less 0.5 for its index.
      const [sxRaw, syRaw] = applyHomography(h, [x + 0.5, y + 0.5]);
      const sx = Math.min(maxX, Math.max(0, (Number.isFinite(sxRaw) ? sxRaw : 0) - 0.5));
      const sy = Math.min(maxY, Math.max(0, (Number.isFinite(syRaw) ? syRaw : 0) - 0.5));
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(maxX, x0 + 1);
      const y1 = Math.min(maxY, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) {
        const p00 = src[(y0 * srcW + x0) * channels + c]!;
        const p10 = src[(y0 * srcW + x1) * channels + c]!;
        const p01 = src[(y1 * srcW + x0) * channels + c]!;
        const p11 = src[(y1 * srcW + x1) * channels + c]!;
        const top = p00 + (p10 - p00) * fx;
        const bottom = p01 + (p11 - p01) * fx;
        out[o + c] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  return out;
}
