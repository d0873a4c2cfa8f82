/**
 * The CMS <-> worker WebSocket protocol (spec/worker-protocol.md), field for field, and the
 * parsing of what the CMS sends. Parsing is pure and total: any input gives either a typed
 * command or a reason, never an exception, so a bad message can be logged and ignored
 * without touching the connection.
 */

export interface CropBox {
  cropX1: number;
  cropY1: number;
  cropX2: number;
  cropY2: number;
}

export interface SubscribePayload extends Partial<CropBox> {
  subscriptionIdentifier: string;
  rtspUrl?: string;
  snapshotUrl?: string;
  snapshotInterval?: number;
  modelUrl: string;
  modelName: string;
  modelId: number | string;
}

export type CmsCommand =
  | { type: 'subscribe'; payload: SubscribePayload }
  | { type: 'unsubscribe'; payload: { subscriptionIdentifier: string } }
  | { type: 'requestState' }
  | { type: 'setSessionId'; payload: { displayIdentifier: string; sessionId: number | string | null } }
  | { type: 'patchSessionResult'; payload: { sessionId: number | string; success: boolean; message?: string } };

export interface CameraConnection extends Partial<CropBox> {
  subscriptionIdentifier: string;
  modelId: number | string;
  modelName: string;
  online: boolean;
}

export interface StateReport {
  type: 'stateReport';
  cpuUsage: number;
  memoryUsage: number;
  gpuUsage: number | null;
  gpuMemoryUsage: number | null;
  cameraConnections: CameraConnection[];
}

/** `imageDetection.data.detection`: flat, as the spec says (boxes stay in infer's `result`). */
export type FlatDetection = Record<string, string | number | boolean | null>;

export interface ImageDetection {
  type: 'imageDetection';
  subscriptionIdentifier: string;
  timestamp: string;
  data: { detection: FlatDetection; modelId: number | string; modelName: string };
}

export interface PatchSession {
  type: 'patchSession';
  sessionId: number | string;
  data: Record<string, unknown>;
}

export type WorkerMessage = StateReport | ImageDetection | PatchSession;

export type ParseResult = { ok: true; command: CmsCommand } | { ok: false; reason: string; type?: string };

const MAX_ID = 512;
const MAX_URL = 4096;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}

/**
 * A camera URL of one of `schemes`, taken literally: the WHATWG parser forgives leading
 * spaces and control characters and drops tabs and newlines anywhere (" rtsp://…",
 * "rt\nsp://…"), but the raw string is what ffmpeg or undici receives, and ffmpeg would
 * read such a string as a local file name. So the text itself must start with the scheme,
 * hold no whitespace or control characters, and name a host.
 */
function isCameraUrl(v: string, schemes: string[]): boolean {
  if (/[\u0000-\u0020\u007f-\u009f]/.test(v)) return false;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:)\/\//.exec(v)?.[1]?.toLowerCase();
  if (!scheme || !schemes.includes(scheme)) return false;
  try {
    const u = new URL(v);
    return u.protocol === scheme && u.hostname !== '';
  } catch {
    return false;
  }
}

/** `displayIdentifier;cameraIdentifier`: both parts non-empty, no control characters. */
export function splitSubscriptionIdentifier(id: string): { display: string; camera: string } | null {
  const i = id.indexOf(';');
  if (i <= 0 || i === id.length - 1 || /[\u0000-\u001f]/.test(id)) return null;
  return { display: id.slice(0, i), camera: id.slice(i + 1) };
}

function parseSubscribe(p: unknown): SubscribePayload | string {
  if (!isObject(p)) return 'payload must be an object';
  const { subscriptionIdentifier, rtspUrl, snapshotUrl, snapshotInterval, modelUrl, modelName, modelId } = p;
  if (!str(subscriptionIdentifier, MAX_ID) || !splitSubscriptionIdentifier(subscriptionIdentifier)) return 'subscriptionIdentifier must be "display;camera"';
  if (rtspUrl !== undefined && rtspUrl !== null && !(str(rtspUrl, MAX_URL) && isCameraUrl(rtspUrl, ['rtsp:', 'rtsps:']))) return 'rtspUrl must be an rtsp:// URL';
  if (snapshotUrl !== undefined && snapshotUrl !== null && !(str(snapshotUrl, MAX_URL) && isCameraUrl(snapshotUrl, ['http:', 'https:']))) return 'snapshotUrl must be an http(s) URL';
  if (!rtspUrl && !snapshotUrl) return 'one of rtspUrl or snapshotUrl is required';
  if (snapshotInterval !== undefined && snapshotInterval !== null && !(Number.isInteger(snapshotInterval) && (snapshotInterval as number) >= 100 && (snapshotInterval as number) <= 3_600_000)) {
    return 'snapshotInterval must be an integer of milliseconds between 100 and 3600000';
  }
  if (!str(modelUrl, MAX_URL)) return 'modelUrl is required';
  if (typeof modelName !== 'string' || modelName.length > 256) return 'modelName must be a string';
  if (!((typeof modelId === 'number' && Number.isInteger(modelId) && modelId >= 0) || (typeof modelId === 'string' && /^[A-Za-z0-9_.-]{1,128}$/.test(modelId)))) {
    return 'modelId must be a non-negative integer or an id of letters, digits, "_", "-", "."';
  }
  const out: SubscribePayload = { subscriptionIdentifier, modelUrl, modelName, modelId };
  if (rtspUrl) out.rtspUrl = rtspUrl as string;
  if (snapshotUrl) out.snapshotUrl = snapshotUrl as string;
  if (typeof snapshotInterval === 'number') out.snapshotInterval = snapshotInterval;
  const crop = ['cropX1', 'cropY1', 'cropX2', 'cropY2'] as const;
  const given = crop.filter((k) => p[k] !== undefined && p[k] !== null);
  if (given.length > 0) {
    if (given.length !== 4) return 'crop needs all of cropX1, cropY1, cropX2, cropY2';
    for (const k of crop) if (!Number.isInteger(p[k]) || (p[k] as number) < 0 || (p[k] as number) > 100_000) return `${k} must be a non-negative integer`;
    const [x1, y1, x2, y2] = crop.map((k) => p[k] as number) as [number, number, number, number];
    if (x2 <= x1 || y2 <= y1) return 'crop must have cropX2 > cropX1 and cropY2 > cropY1';
    Object.assign(out, { cropX1: x1, cropY1: y1, cropX2: x2, cropY2: y2 });
  }
  return out;
}

function validSessionId(v: unknown): v is number | string {
  return (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length > 0 && v.length <= 256);
}

/** Parses one text frame from the CMS. */
export function parseCmsMessage(text: string): ParseResult {
  if (text.length > 1024 * 1024) return { ok: false, reason: 'message over 1 MiB' };
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isObject(msg) || typeof msg.type !== 'string') return { ok: false, reason: 'message must be an object with a string "type"' };
  const type = msg.type;
  // The type goes into log lines: a 1 MB one must not.
  const fail = (reason: string): ParseResult => ({ ok: false, reason, type: type.slice(0, 64) });
  switch (type) {
    case 'subscribe': {
      const p = parseSubscribe(msg.payload);
      return typeof p === 'string' ? fail(p) : { ok: true, command: { type, payload: p } };
    }
    case 'unsubscribe': {
      const p = msg.payload;
      if (!isObject(p) || !str(p.subscriptionIdentifier, MAX_ID)) return fail('payload.subscriptionIdentifier is required');
      return { ok: true, command: { type, payload: { subscriptionIdentifier: p.subscriptionIdentifier } } };
    }
    case 'requestState':
      return { ok: true, command: { type } };
    case 'setSessionId': {
      const p = msg.payload;
      if (!isObject(p) || !str(p.displayIdentifier, MAX_ID) || p.displayIdentifier.includes(';')) return fail('payload.displayIdentifier is required (without ";")');
      if (p.sessionId !== null && !validSessionId(p.sessionId)) return fail('payload.sessionId must be a number, a string or null');
      return { ok: true, command: { type, payload: { displayIdentifier: p.displayIdentifier, sessionId: p.sessionId } } };
    }
    case 'patchSessionResult': {
      const p = msg.payload;
      if (!isObject(p) || !validSessionId(p.sessionId) || typeof p.success !== 'boolean') return fail('payload needs sessionId and a boolean success');
      return { ok: true, command: { type, payload: { sessionId: p.sessionId, success: p.success, ...(typeof p.message === 'string' ? { message: p.message.slice(0, 1000) } : {}) } } };
    }
    default:
      return fail(`unknown message type "${type.slice(0, 64)}"`);
  }
}

/**
 * Keeps only the flat part of a detection: string, finite number, boolean and null values.
 * Anything else (arrays such as bbox, objects, NaN) is dropped rather than stringified, so
 * the CMS never receives a shape its `currentCar` fields cannot hold.
 */
export function flatDetection(detection: unknown): FlatDetection {
  const out: FlatDetection = {};
  if (!isObject(detection)) return out;
  for (const [key, value] of Object.entries(detection)) {
    if (value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) out[key] = value;
  }
  return out;
}

/** Same payload (for idempotent subscribe): compares every field that changes behaviour. */
export function samePayload(a: SubscribePayload, b: SubscribePayload): boolean {
  const keys: Array<keyof SubscribePayload> = ['subscriptionIdentifier', 'rtspUrl', 'snapshotUrl', 'snapshotInterval', 'modelUrl', 'modelName', 'modelId', 'cropX1', 'cropY1', 'cropX2', 'cropY2'];
  return keys.every((k) => a[k] === b[k]);
}
