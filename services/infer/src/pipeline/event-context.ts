/**
 * The template context of one detection event (spec: "Action Context & Dynamic Keys").
 * Pure: the clock and the uuid can be passed in, so tests and retried requests get
 * reproducible values.
 */
import { randomUUID } from 'node:crypto';
import type { Detection, EventContext, RequestContext } from './types.js';
import { deterministicUuid } from './session.js';

export interface EventContextInput {
  /** The node's primary detection; its scalar fields (class, confidence, id) join the context. */
  detection: Pick<Detection, 'class' | 'confidence' | 'id'> & Partial<Detection>;
  request: RequestContext;
  /** Event time; default: the request's `capturedAt` when valid, else the current time. */
  now?: number | Date;
  /** Event uuid; default: derived from requestId + node when both are known, else random. */
  uuid?: string;
  /** modelId of the node, which scopes the derived uuid of a retried request. */
  node?: string;
}

/** `YYYY-MM-DDTHH-MM-SS` in UTC (the original's key-friendly format: no colons). */
export function formatTimestamp(time: number | Date): string {
  return new Date(time).toISOString().slice(0, 19).replace(/:/g, '-');
}

/** The display id: explicit, else the part of `display;camera` before the `;`. */
export function displayIdOf(request: RequestContext): string | null {
  if (request.displayId) return request.displayId;
  const sub = request.subscriptionIdentifier;
  if (!sub) return null;
  const head = sub.split(';')[0] ?? '';
  return head || null;
}

function eventTime(input: EventContextInput): number {
  if (input.now instanceof Date) return input.now.getTime();
  if (typeof input.now === 'number') return input.now;
  const captured = input.request.capturedAt ? Date.parse(input.request.capturedAt) : NaN;
  return Number.isFinite(captured) ? captured : Date.now();
}

export function buildEventContext(input: EventContextInput): EventContext {
  const context: EventContext = {};
  // Every scalar key of the detection (class, confidence, id); arrays like bbox are not
  // template material.
  for (const [k, v] of Object.entries(input.detection)) {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') context[k] = v;
  }
  const ms = eventTime(input);
  const { requestId } = input.request;
  const uuid = input.uuid ?? (requestId && input.node ? deterministicUuid(`event\0${requestId}\0${input.node}`) : randomUUID());
  context.timestamp_ms = ms;
  context.timestamp = formatTimestamp(ms);
  context.uuid = uuid;
  context.filename = `${uuid}.jpg`;
  context.camera_id = input.request.subscriptionIdentifier ?? null;
  context.display_id = displayIdOf(input.request);
  context.session_id = input.request.sessionId ?? null;
  return context;
}
