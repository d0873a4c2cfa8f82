/** Reconnect delays: exponential from the configured interval, capped; pure. */
export function backoffDelayMs(failures: number, baseSec: number, maxSec: number): number {
  const exp = Math.min(failures, 20);
  return Math.round(Math.min(maxSec, baseSec * 2 ** exp) * 1000);
}

/** Whether another attempt is allowed (`maxRetries` -1 = forever, as in the original config). */
export function mayRetry(failures: number, maxRetries: number): boolean {
  return maxRetries < 0 || failures <= maxRetries;
}
