/**
 * Frames per second of a camera, measured by the reader from its own deliveries (the last
 * few frames, within a minute), so it does not depend on who asks or how often. A camera
 * that stops is seen slowing down at once and reads 0 once its frames are a minute old.
 * Pure apart from the clock the caller passes.
 */
export class FrameRate {
  private readonly times: number[] = [];

  constructor(
    private readonly keep = 20,
    private readonly windowMs = 60_000,
  ) {}

  /** Records a frame delivered at `at` (ms). */
  add(at: number): void {
    this.times.push(at);
    if (this.times.length > this.keep) this.times.shift();
  }

  reset(): void {
    this.times.length = 0;
  }

  /** Frames per second as of `now` (ms); 0 with fewer than two recent frames. */
  perSecond(now: number): number {
    while (this.times.length && now - this.times[0]! > this.windowMs) this.times.shift();
    const n = this.times.length;
    if (n < 2) return 0;
    const first = this.times[0]!;
    const last = this.times[n - 1]!;
    const mean = (last - first) / (n - 1);
    // Silence longer than one usual interval stretches the span: a stalled camera decays.
    const span = last - first + Math.max(0, now - last - mean);
    return span > 0 ? ((n - 1) * 1000) / span : 0;
  }
}
