import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildEventContext, displayIdOf, formatTimestamp } from './event-context.js';
import { deterministicUuid, sessionIdFor } from './session.js';

const detection = { class: 'Car', confidence: 0.9, id: null, bbox: [1, 2, 3, 4] as [number, number, number, number] };

test('buildEventContext: time, ids and detection fields', () => {
  const ctx = buildEventContext({ detection, request: { subscriptionIdentifier: 'display-001;cam-001' }, now: Date.UTC(2024, 0, 2, 3, 4, 5, 678), uuid: 'u-1' });
  assert.deepEqual(ctx, {
    class: 'Car',
    confidence: 0.9,
    id: null,
    timestamp_ms: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
    timestamp: '2024-01-02T03-04-05',
    uuid: 'u-1',
    filename: 'u-1.jpg',
    camera_id: 'display-001;cam-001',
    display_id: 'display-001',
    session_id: null,
  });
});

test('display id: explicit first, else before the ";" of the subscription', () => {
  assert.equal(displayIdOf({ displayId: 'd9', subscriptionIdentifier: 'x;y' }), 'd9');
  assert.equal(displayIdOf({ subscriptionIdentifier: 'solo' }), 'solo');
  assert.equal(displayIdOf({}), null);
});

test('event time defaults to capturedAt; uuid is stable for a retried request', () => {
  const request = { requestId: 'req-1', capturedAt: '2024-05-06T07:08:09Z', sessionId: 'sess' };
  const a = buildEventContext({ detection, request, node: 'n1' });
  const b = buildEventContext({ detection, request, node: 'n1' });
  assert.equal(a.timestamp, '2024-05-06T07-08-09');
  assert.equal(a.session_id, 'sess');
  assert.equal(a.uuid, b.uuid);
  assert.notEqual(buildEventContext({ detection, request, node: 'n2' }).uuid, a.uuid);
  assert.notEqual(buildEventContext({ detection, request: {} }).uuid, buildEventContext({ detection, request: {} }).uuid);
  assert.equal(formatTimestamp(new Date(0)), '1970-01-01T00-00-00');
});

test('session ids: caller-given, derived from requestId + node, else random', () => {
  assert.equal(sessionIdFor({ sessionId: 's1', requestId: 'r' }, 'n'), 's1');
  const s = sessionIdFor({ requestId: 'r1' }, 'n');
  assert.equal(s, sessionIdFor({ requestId: 'r1' }, 'n'));
  assert.notEqual(s, sessionIdFor({ requestId: 'r1' }, 'other'));
  assert.match(s, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(sessionIdFor({}, 'n'), sessionIdFor({}, 'n'));
  assert.equal(deterministicUuid('x'), deterministicUuid('x'));
});
