/**
 * A seeded, deterministic generator of hostile CMS messages (pure: same seed, same frames),
 * for test/hostile-cms-messages.test.ts. Every subscribe it makes carries at least one
 * defect the relay must refuse, so none of them may ever show up in a state report; the
 * other commands are malformed or harmless (never requestState, which would hide a
 * starved heartbeat).
 */

export interface FuzzFrame {
  /** A text frame (string or raw bytes, possibly invalid UTF-8) or a binary frame. */
  kind: 'text' | 'binary';
  data: string | Buffer;
  /** What was generated, for a failure message. */
  label: string;
}

/** mulberry32: tiny, fast, good enough to pick cases reproducibly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

/** Just under the relay's 1 MiB frame limit once wrapped in a message. */
export const BIG = 1_000_000;

/** Values of the wrong kind for any field. */
const WRONG_TYPES: readonly unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, '', ' ', [], [1, 2], {}, { a: 1 }, '0', 'null', 'true'];

/** Camera URLs that must never reach a camera reader (other schemes, disguised schemes). */
export const BAD_RTSP_URLS: readonly string[] = [
  'file:///etc/passwd',
  'http://127.0.0.1:1/stream',
  'https://example.invalid/stream',
  'ftp://example.invalid/x',
  'gopher://example.invalid/x',
  'javascript:alert(1)',
  'data:text/plain,hello',
  'concat:rtsp://a|file:///etc/passwd',
  'subfile:,start,0,end,0,:/etc/passwd',
  '/etc/passwd',
  '-i /etc/passwd',
  ' rtsp://127.0.0.1:1/leading-space',
  '\u0000rtsp://127.0.0.1:1/leading-nul',
  'rt\nsp://127.0.0.1:1/newline-in-scheme',
  'rtsp://127.0.0.1:1/tab\there',
  'rtsp:',
  'rtsp://',
  'not a url',
  `rtsp://127.0.0.1:1/${'a'.repeat(5000)}`,
];

export const BAD_SNAPSHOT_URLS: readonly string[] = [
  'rtsp://127.0.0.1:1/stream',
  'file:///etc/passwd',
  'ftp://example.invalid/x',
  'javascript:alert(1)',
  'data:image/jpeg;base64,AAAA',
  ' http://127.0.0.1:1/leading-space',
  'ht\ttp://127.0.0.1:1/tab-in-scheme',
  'http://',
  '//127.0.0.1:1/no-scheme',
  `http://127.0.0.1:1/${'a'.repeat(5000)}`,
];

/** A subscribe payload that would be accepted as is; the fuzz always breaks it. */
export function validPayload(id: string): Record<string, unknown> {
  return { subscriptionIdentifier: id, rtspUrl: 'rtsp://127.0.0.1:1/stream', modelUrl: 'http://127.0.0.1:1/m.mpta', modelName: 'Fuzz', modelId: 1 };
}

/** Each entry makes the payload invalid on its own. */
const BREAKERS: ReadonlyArray<[string, (p: Record<string, unknown>, r: Rand) => void]> = [
  ['no subscriptionIdentifier', (p) => void delete p.subscriptionIdentifier],
  ['bad subscriptionIdentifier', (p, r) => (p.subscriptionIdentifier = pick(r, ['', 'no-semicolon', ';cam', 'display;', 'a;b\u0000', 'a;b\n', `${'d'.repeat(600)};c`, 42, null, ['a;b'], { a: 'b' }]))],
  ['bad rtspUrl', (p, r) => (p.rtspUrl = pick(r, BAD_RTSP_URLS))],
  ['rtspUrl of a wrong type', (p, r) => (p.rtspUrl = pick(r, [42, true, ['rtsp://x'], { href: 'rtsp://x' }]))],
  ['bad snapshotUrl, no rtspUrl', (p, r) => (delete p.rtspUrl, (p.snapshotUrl = pick(r, BAD_SNAPSHOT_URLS)))],
  ['no camera URL', (p) => void delete p.rtspUrl],
  ['bad snapshotInterval', (p, r) => (delete p.rtspUrl, (p.snapshotUrl = 'http://127.0.0.1:1/s.jpg'), (p.snapshotInterval = pick(r, [-1, 0, 99, 1.5, 3_600_001, 1e308, '5000', true, [5000]])))],
  ['no modelUrl', (p) => void delete p.modelUrl],
  ['bad modelUrl', (p, r) => (p.modelUrl = pick(r, ['', 42, null, 'u'.repeat(5000), ['x']]))],
  ['bad modelName', (p, r) => (p.modelName = pick(r, [42, null, true, 'n'.repeat(300), { n: 1 }]))],
  ['bad modelId', (p, r) => (p.modelId = pick(r, [-1, 1.5, '', '../etc', 'a b', 'x'.repeat(200), null, true, [], {}, 1e400]))],
  ['partial crop', (p, r) => {
    const keep = pick(r, ['cropX1', 'cropY1', 'cropX2', 'cropY2']);
    for (const k of ['cropX1', 'cropY1', 'cropX2', 'cropY2']) delete p[k];
    p[keep] = int(r, 0, 500);
  }],
  ['negative crop', (p, r) => Object.assign(p, { cropX1: -int(r, 1, 100), cropY1: 0, cropX2: 100, cropY2: 100 })],
  ['inverted crop', (p, r) => Object.assign(p, { cropX1: 300, cropY1: int(r, 0, 50), cropX2: int(r, 0, 300), cropY2: 200 })],
  ['empty crop', (p) => Object.assign(p, { cropX1: 10, cropY1: 10, cropX2: 10, cropY2: 10 })],
  ['fractional crop', (p) => Object.assign(p, { cropX1: 0.5, cropY1: 0, cropX2: 100, cropY2: 100 })],
  ['huge crop', (p, r) => Object.assign(p, { cropX1: 0, cropY1: 0, cropX2: pick(r, [1e9, 1e308, 2 ** 53 + 2]), cropY2: 100 })],
  ['crop of strings', (p) => Object.assign(p, { cropX1: '0', cropY1: '0', cropX2: '100', cropY2: '100' })],
];

/** Harmless additions that do not make a payload valid or invalid by themselves. */
const NOISE: ReadonlyArray<(p: Record<string, unknown>, r: Rand) => void> = [
  (p) => (p.unknownField = 'x'),
  (p) => (p['__proto__'] = { polluted: true }),
  (p) => (p['constructor'] = { prototype: { polluted: true } }),
  (p, r) => (p.extra = pick(r, WRONG_TYPES)),
];

function brokenSubscribe(r: Rand, n: number): { text: string; label: string } {
  const p = validPayload(`fuzz-${n};cam-${n % 7}`);
  const labels: string[] = [];
  const count = int(r, 1, 3);
  for (let i = 0; i < count; i++) {
    const [label, apply] = pick(r, BREAKERS);
    apply(p, r);
    labels.push(label);
  }
  if (r() < 0.3) pick(r, NOISE)(p, r);
  // JSON.stringify drops the own "__proto__" key set through assignment; write it by hand.
  let text = JSON.stringify({ type: 'subscribe', payload: p });
  if (r() < 0.2) text = text.replace('"payload":{', '"payload":{"__proto__":{"subscriptionIdentifier":"proto;pollution"},');
  return { text, label: `subscribe: ${labels.join(', ')}` };
}

function malformedJson(r: Rand): { text: string; label: string } {
  const depth = 100_000;
  const cases: Array<() => { text: string; label: string }> = [
    () => ({ text: 'this is not json', label: 'not JSON' }),
    () => ({ text: '', label: 'empty frame' }),
    () => ({ text: '{"type":"subscribe","payload":{"modelId":NaN}}', label: 'NaN literal' }),
    () => ({ text: '{"type":"subscribe","payload":{"cropX1":-Infinity}}', label: 'Infinity literal' }),
    () => ({ text: '{"type":"subscribe"', label: 'truncated JSON' }),
    () => ({ text: '{"type":"subscribe","type":"requestStat"}', label: 'duplicate keys' }),
    () => ({ text: '['.repeat(depth) + ']'.repeat(depth), label: `${depth} nested arrays` }),
    () => ({ text: '['.repeat(depth), label: `${depth} unclosed arrays` }),
    () => ({ text: '{"a":'.repeat(depth) + '1' + '}'.repeat(depth), label: `${depth} nested objects` }),
    () => ({ text: `{"type":"subscribe","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`, label: 'nested payload' }),
    () => ({ text: `{"type":"${'t'.repeat(BIG)}"}`, label: '1 MB type' }),
    () => ({ text: JSON.stringify({ type: 'subscribe', payload: { ...validPayload('big;one'), modelUrl: 'http://x/' + 'm'.repeat(BIG) } }), label: '1 MB modelUrl' }),
    () => ({ text: JSON.stringify({ type: 'setSessionId', payload: { displayIdentifier: 'd'.repeat(BIG), sessionId: 1 } }), label: '1 MB displayIdentifier' }),
    () => ({ text: JSON.stringify({ type: 'patchSessionResult', payload: { sessionId: 1, success: false, message: 'm'.repeat(BIG) } }), label: '1 MB message' }),
    () => ({ text: `"${'s'.repeat(BIG)}"`, label: '1 MB string' }),
    () => ({ text: '1e400', label: 'number overflow' }),
    () => ({ text: '\ufeff{"type":"requestState"}', label: 'BOM before JSON' }),
    () => ({ text: '{"type":"\ud800"}', label: 'lone surrogate' }),
  ];
  return pick(r, cases)();
}

function wrongShape(r: Rand): { text: string; label: string } {
  const type = pick(r, ['subscribe', 'unsubscribe', 'setSessionId', 'patchSessionResult', 'launchRockets', '', 'SUBSCRIBE', 'toString', '__proto__', 'constructor', 'hasOwnProperty']);
  const cases: Array<() => unknown> = [
    () => pick(r, WRONG_TYPES),
    () => ({ payload: {} }),
    () => ({ type: pick(r, WRONG_TYPES) }),
    () => ({ type }),
    () => ({ type, payload: pick(r, WRONG_TYPES) }),
    () => ({ type: 'unsubscribe', payload: { subscriptionIdentifier: pick(r, WRONG_TYPES) } }),
    () => ({ type: 'unsubscribe', payload: { subscriptionIdentifier: `never;subscribed-${int(r, 0, 99)}` } }),
    () => ({ type: 'setSessionId', payload: { displayIdentifier: pick(r, ['a;b', '', 42, null]), sessionId: 1 } }),
    () => ({ type: 'setSessionId', payload: { displayIdentifier: `fuzz-${int(r, 0, 9)}`, sessionId: pick(r, [{}, [], true, 1e308, '', 's'.repeat(300), null, 'ok', 7]) } }),
    () => ({ type: 'patchSessionResult', payload: { sessionId: pick(r, WRONG_TYPES), success: pick(r, WRONG_TYPES), message: pick(r, WRONG_TYPES) } }),
  ];
  const value = pick(r, cases)();
  return { text: JSON.stringify(value) ?? 'undefined', label: `wrong shape (${type})` };
}

function badBytes(r: Rand): FuzzFrame {
  const cases: Array<() => FuzzFrame> = [
    () => ({ kind: 'text', data: Buffer.from([0xff, 0xfe, 0xfd]), label: 'invalid UTF-8 text frame' }),
    () => ({ kind: 'text', data: Buffer.concat([Buffer.from('{"type":"requestState","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), label: 'invalid UTF-8 inside JSON' }),
    () => ({ kind: 'text', data: Buffer.from([0xed, 0xa0, 0x80]), label: 'UTF-8 encoded surrogate' }),
    () => ({ kind: 'binary', data: Buffer.from(JSON.stringify({ type: 'subscribe', payload: validPayload('binary;frame') })), label: 'subscribe as a binary frame' }),
    () => ({ kind: 'binary', data: Buffer.alloc(int(r, 0, 65_536), int(r, 0, 255)), label: 'binary noise' }),
  ];
  return pick(r, cases)();
}

/** `count` hostile frames from `seed`; the same arguments always give the same frames. */
export function* cmsFuzz(seed: number, count: number): Generator<FuzzFrame> {
  const r = rng(seed);
  for (let n = 0; n < count; n++) {
    const roll = r();
    const text = (m: { text: string; label: string }): FuzzFrame => ({ kind: 'text', data: m.text, label: m.label });
    if (roll < 0.45) yield text(brokenSubscribe(r, n));
    else if (roll < 0.7) yield text(wrongShape(r));
    else if (roll < 0.85) yield badBytes(r);
    else yield text(malformedJson(r));
  }
}

/** The frame's size in bytes on the wire (payload only). */
export function frameBytes(f: FuzzFrame): number {
  return typeof f.data === 'string' ? Buffer.byteLength(f.data) : f.data.length;
}
