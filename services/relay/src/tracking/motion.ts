/**
 * Is anything moving in the zone? Compares each small greyscale thumbnail with a slowly
 * updated background (so gradual light changes and camera noise do not count) and says
 * "motion" when enough pixels changed by more than a noise threshold. Pure; the frame group
 * makes the thumbnails (infer-link/frame-images.ts).
 */

export interface MotionConfig {
  /** A pixel differs when its grey level moved more than this (0-255). */
  pixelThreshold: number;
  /** Motion when at least this share of the thumbnail's pixels differ. */
  minChangedShare: number;
  /** How fast the background follows the scene (0-1 per frame). */
  learningRate: number;
}

export const DEFAULT_MOTION_CONFIG: MotionConfig = { pixelThreshold: 25, minChangedShare: 0.01, learningRate: 0.05 };

export class MotionDetector {
  private background: Float32Array | undefined;
  /** Thumbnails learnt so far: the first ones are averaged (1/n each), so a young background is not one noisy picture. */
  private samples = 0;

  constructor(private readonly config: MotionConfig = DEFAULT_MOTION_CONFIG) {}

  /** Share of changed pixels in this thumbnail; feeds the background. */
  changedShare(thumb: Uint8Array): number {
    const bg = this.background;
    if (!bg || bg.length !== thumb.length) {
      this.background = Float32Array.from(thumb);
      this.samples = 1;
      // The first thumbnail: nothing to compare with, so assume something may be there.
      return 1;
    }
    let changed = 0;
    const a = Math.max(this.config.learningRate, 1 / ++this.samples);
    for (let i = 0; i < thumb.length; i++) {
      const v = thumb[i]!;
      if (Math.abs(v - bg[i]!) > this.config.pixelThreshold) changed++;
      bg[i] = bg[i]! + a * (v - bg[i]!);
    }
    return thumb.length ? changed / thumb.length : 0;
  }

  /** Whether a background exists yet (the first thumbnail only starts one). */
  get primed(): boolean {
    return this.background !== undefined;
  }

  /** Whether this thumbnail shows motion. */
  moving(thumb: Uint8Array): boolean {
    return this.changedShare(thumb) >= this.config.minChangedShare;
  }
}
