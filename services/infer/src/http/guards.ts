/**
 * Small checks the HTTP layer makes on a request before reading its body, and the lingering
 * close used when it refuses one mid-upload.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/** How long a refused upload may keep sending after its answer (see lingerOnClose). */
export const LINGER_MS = 2000;

/**
 * node:http destroys a `Connection: close` socket as soon as the answer is flushed. A client
 * still uploading then gets a TCP reset, and its kernel may drop our answer unread. Instead:
 * send FIN after the answer, discard what still arrives until the client closes, at most
 * lingerMs (lingering close, as nginx and Apache do).
 */
export function lingerOnClose(socket: Socket, lingerMs = LINGER_MS): void {
  const s = socket as Socket & { destroySoon?: () => void };
  s.destroySoon = () => {
    if (s.writable) s.end();
    const timer = setTimeout(() => s.destroy(), lingerMs);
    timer.unref();
    s.once('close', () => clearTimeout(timer));
    s.once('end', () => s.destroy());
  };
}

export function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}

/** The declared body size; undefined when absent (chunked) or not a plain number. */
export function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const raw = headers['content-length'];
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

/** sha256 of the value a request must present; compare with tokenMatches. */
export function tokenDigest(expected: string): Buffer {
  return createHash('sha256').update(expected).digest();
}

/** Same answer time whatever the given value: digests make the lengths equal. */
export function tokenMatches(given: string | undefined, expectedDigest: Buffer): boolean {
  return timingSafeEqual(tokenDigest(given ?? ''), expectedDigest);
}
