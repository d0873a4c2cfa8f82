/**
 * Caps how many "message ignored" lines one CMS connection can write: a CMS (or anything
 * that got its address) sending garbage in a loop must not fill the disk or block the
 * event loop on a slow log pipe. The first `burst` lines of each window are logged; the
 * rest are counted and reported as one line when the next window opens.
 */
export class LogThrottle {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly burst: number,
    private readonly windowMs: number,
  ) {}

  /**
   * Whether this line may be written now, and how many were suppressed since the last one
   * that was (to be logged alongside it).
   */
  take(now: number): { log: boolean; suppressed: number } {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.burst) {
      this.suppressed++;
      return { log: false, suppressed: 0 };
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { log: true, suppressed };
  }

  /** Lines suppressed and not yet reported (for a last line when the connection closes). */
  get pending(): number {
    return this.suppressed;
  }
}
