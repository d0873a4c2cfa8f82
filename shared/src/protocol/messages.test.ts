import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flatDetection, parseCmsMessage, samePayload, splitSubscriptionIdentifier } from './messages.js';

const sub = (payload: Record<string, unknown>) => JSON.stringify({ type: 'subscribe', payload: { subscriptionIdentifier: 'display-001;cam-002', rtspUrl: 'rtsp://user:pass@host:554/stream', modelUrl: 'http://storage/models/us-lpr.mpta', modelName: 'US-LPR', modelId: 102, ...payload } });

test('subscribe: the spec example parses, crop included', () => {
  const r = parseCmsMessage(sub({ snapshotUrl: 'http://go2rtc/snapshot/1', snapshotInterval: 5000, cropX1: 100, cropY1: 200, cropX2: 300, cropY2: 400 }));
  assert.ok(r.ok);
  assert.equal(r.command.type, 'subscribe');
  if (r.command.type !== 'subscribe') return;
  assert.equal(r.command.payload.cropX2, 300);
  assert.equal(r.command.payload.snapshotInterval, 5000);
  assert.equal(r.command.payload.modelId, 102);
});

test('subscribe: every invalid field is refused with a reason', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ subscriptionIdentifier: 'nosemicolon' }, /display;camera/],
    [{ subscriptionIdentifier: ';cam' }, /display;camera/],
    [{ rtspUrl: 'http://not-rtsp' }, /rtsp:\/\//],
    [{ rtspUrl: undefined }, /rtspUrl or snapshotUrl/],
    [{ snapshotUrl: 'file:///etc/passwd', rtspUrl: undefined }, /http\(s\)/],
    [{ snapshotUrl: 'http://x/s', snapshotInterval: 5 }, /snapshotInterval/],
    [{ modelUrl: '' }, /modelUrl/],
    [{ modelId: -1 }, /modelId/],
    [{ modelId: '../../etc' }, /modelId/],
    [{ cropX1: 1 }, /all of cropX1/],
    [{ cropX1: 300, cropY1: 0, cropX2: 100, cropY2: 10 }, /cropX2 > cropX1/],
    [{ cropX1: 1.5, cropY1: 0, cropX2: 100, cropY2: 10 }, /integer/],
  ];
  for (const [payload, reason] of bad) {
    const r = parseCmsMessage(sub(payload));
    assert.equal(r.ok, false, JSON.stringify(payload));
    if (!r.ok) assert.match(r.reason, reason);
  }
});

test('other commands, and garbage', () => {
  assert.deepEqual(parseCmsMessage('{"type":"requestState"}'), { ok: true, command: { type: 'requestState' } });
  assert.deepEqual(parseCmsMessage('{"type":"unsubscribe","payload":{"subscriptionIdentifier":"a;b"}}'), { ok: true, command: { type: 'unsubscribe', payload: { subscriptionIdentifier: 'a;b' } } });
  assert.deepEqual(parseCmsMessage('{"type":"setSessionId","payload":{"displayIdentifier":"display-001","sessionId":null}}'), { ok: true, command: { type: 'setSessionId', payload: { displayIdentifier: 'display-001', sessionId: null } } });
  assert.equal(parseCmsMessage('{"type":"setSessionId","payload":{"displayIdentifier":"a;b","sessionId":1}}').ok, false);
  assert.equal(parseCmsMessage('{"type":"patchSessionResult","payload":{"sessionId":12345,"success":true,"message":"ok"}}').ok, true);
  assert.equal(parseCmsMessage('{"type":"patchSessionResult","payload":{"sessionId":12345}}').ok, false);
  for (const text of ['nope', '[]', '{"type":1}', 'null', '{"type":"fly"}', 'x'.repeat(2 * 1024 * 1024)]) assert.equal(parseCmsMessage(text).ok, false, text.slice(0, 20));
});

test('identifiers and payload equality', () => {
  assert.deepEqual(splitSubscriptionIdentifier('display-001;cam-001'), { display: 'display-001', camera: 'cam-001' });
  assert.equal(splitSubscriptionIdentifier('a;'), null);
  const a = { subscriptionIdentifier: 'a;b', rtspUrl: 'rtsp://x', modelUrl: 'u', modelName: 'n', modelId: 1 };
  assert.equal(samePayload(a, { ...a }), true);
  assert.equal(samePayload(a, { ...a, modelId: 2 }), false);
  assert.equal(samePayload(a, { ...a, cropX1: 1, cropY1: 1, cropX2: 5, cropY2: 5 }), false);
});

test('flatDetection keeps strings, finite numbers, booleans and null only', () => {
  assert.deepEqual(flatDetection({ a: 'x', b: 1.5, c: false, d: null, bbox: [1, 2], o: { x: 1 }, n: Number.NaN, i: -Infinity, u: undefined, f: () => 1 }), { a: 'x', b: 1.5, c: false, d: null });
  for (const v of [null, undefined, 'str', 5, [1, 2]]) assert.deepEqual(flatDetection(v), {});
});

test('camera URLs are taken literally: disguised schemes, whitespace, control characters and empty hosts are refused', () => {
  const refused = [' rtsp://h/s', '\u0000rtsp://h/s', 'rt\nsp://h/s', 'rtsp://h/a\tb', 'rtsp://h/a b', 'rtsp:', 'rtsp://', 'rtsp:h/s', 'concat:rtsp://h|file:///etc/passwd', '-i rtsp://h/s', 'rtsp://h/\u0085'];
  for (const rtspUrl of refused) {
    const r = parseCmsMessage(sub({ rtspUrl }));
    assert.equal(r.ok, false, JSON.stringify(rtspUrl));
  }
  for (const snapshotUrl of [' http://h/s.jpg', 'ht\ttp://h/s.jpg', 'http://', '//h/s.jpg', 'http:h/s.jpg']) {
    assert.equal(parseCmsMessage(sub({ rtspUrl: undefined, snapshotUrl })).ok, false, JSON.stringify(snapshotUrl));
  }
  for (const rtspUrl of ['rtsp://user:p%40ss@10.0.0.1:554/stream?x=1', 'RTSP://h/s', 'rtsps://h/s']) assert.ok(parseCmsMessage(sub({ rtspUrl })).ok, rtspUrl);
  assert.ok(parseCmsMessage(sub({ rtspUrl: undefined, snapshotUrl: 'https://go2rtc:1984/api/frame.jpeg?src=cam' })).ok);
});

test('a huge unknown type is cut short in the reason', () => {
  const r = parseCmsMessage(JSON.stringify({ type: 't'.repeat(100_000) }));
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.type!.length, 64);
    assert.ok(r.reason.length < 200);
  }
});
