/**
 * Retry delays, one rule for both services (pure, milliseconds): the relay's camera readers
 * reconnect with it, its frame groups wait out failed infer requests with it, and infer's
 * action retry queue waits for a database with it. Exponential so a dead peer is asked
 * ever more rarely, capped so a peer that comes back is noticed within `maxMs`.
 */

/** Longest exponent used: beyond it the cap has long been reached, and 2 ** n stays finite. */
const MAX_EXPONENT = 30;

/**
 * The wait before the next attempt after `failures` consecutive failures: none for 0, then
 * base, 2·base, 4·base … and never more than `maxMs`. Whole milliseconds.
 */
export function backoffDelayMs(failures: number, baseMs: number, maxMs: number): number {
  if (!(failures > 0)) return 0;
  return Math.round(Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, MAX_EXPONENT)));
}

/** Whether another attempt is allowed after `failures` failures (`maxRetries` below 0: forever, as max_retries -1 in the original config). */
export function mayRetry(failures: number, maxRetries: number): boolean {
  return maxRetries < 0 || failures <= maxRetries;
}
