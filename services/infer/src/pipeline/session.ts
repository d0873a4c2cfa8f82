/**
 * Session ids. A retried request (same requestId) must land on the same database row, so
 * the id is derived from the request id instead of drawn at random: a name-based UUID
 * (RFC 9562 version 5: SHA-1 over a namespace and a name).
 */
import { createHash, randomUUID } from 'node:crypto';

/** This project's namespace for name-based UUIDs (itself a random v4 UUID, fixed forever). */
const NAMESPACE = Buffer.from('6f1d0c8a3b7e4d52a9c1e4f07b2d8a63', 'hex');

export function deterministicUuid(name: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The session id a node's initial record introduces: the caller's own session id when it
 * sent one, derived from requestId + node when it sent a request id, else random.
 */
export function sessionIdFor(request: { requestId?: string; sessionId?: string }, node: string): string {
  if (request.sessionId) return request.sessionId;
  if (request.requestId) return deterministicUuid(`session\0${request.requestId}\0${node}`);
  return randomUUID();
}
