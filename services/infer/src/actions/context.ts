/**
 * Template context of one detection event (spec: "Action Context & Dynamic Keys"):
 * detection fields, time, a fresh uuid and filename, camera/display/session ids.
 */
import { randomUUID } from 'node:crypto';
import type { Detection, EventContext, RequestContext } from '../pipeline/types.js';

/** `YYYY-MM-DDTHH-MM-SS` in UTC, the original's captured_timestamp format. */
export function formatTimestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/:/g, '-');
}

export function buildEventContext(input: { detection: Detection; request: RequestContext; now?: Date; uuid?: string }): EventContext {
  const now = input.now ?? new Date();
  const uuid = input.uuid ?? randomUUID();
  const camera = input.request.subscriptionIdentifier;
  const display = input.request.displayId ?? (camera?.includes(';') ? camera.split(';')[0] : camera);
  return {
    class: input.detection.class,
    confidence: input.detection.confidence,
    id: input.detection.id,
    timestamp_ms: now.getTime(),
    timestamp: formatTimestamp(now),
    uuid,
    filename: `${uuid}.jpg`,
    camera_id: camera ?? null,
    display_id: display ?? null,
    session_id: input.request.sessionId ?? null,
  };
}
