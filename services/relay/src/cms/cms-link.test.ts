import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createLogger } from '@detector-worker/shared/logging';
import type { SubscribePayload } from '@detector-worker/shared/protocol/messages';
import type { SubscriptionRegistry } from '../subscriptions/registry.js';
import { CmsLink } from './cms-link.js';
import type { SystemUsage } from '../system/system-usage.js';

const quiet = createLogger('test', { level: 'silent' });

/** Just enough of a ws socket: records what is sent, lets the test deliver messages and close it. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly sent: any[] = [];
  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }
  close(): void {
    this.readyState = 3;
    this.emit('close');
  }
  receive(message: unknown): void {
    this.emit('message', Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), false);
  }
}

/** A registry that only records calls (the real one is tested on its own). */
function fakeRegistry() {
  const subs = new Map<string, SubscribePayload>();
  const calls: string[] = [];
  const registry = {
    subscribe(p: SubscribePayload) {
      calls.push(`subscribe ${p.subscriptionIdentifier}`);
      subs.set(p.subscriptionIdentifier, p);
      return { status: 'added' };
    },
    unsubscribe(id: string) {
      calls.push(`unsubscribe ${id}`);
      return subs.delete(id);
    },
    setSessionId(display: string, session: unknown) {
      calls.push(`session ${display}=${session}`);
      return 0;
    },
    list: () => [...subs.values()].map((p) => ({ id: p.subscriptionIdentifier, payload: p, crop: undefined })),
    online: () => true,
    clear() {
      calls.push('clear');
      subs.clear();
    },
  };
  return { registry: registry as unknown as SubscriptionRegistry, calls, subs };
}

const usage = { cpuPercent: () => 12.5, memoryPercent: () => 40, gpuUsage: () => ({ usage: null, memory: null }) } as unknown as SystemUsage;
const sub = (id: string) => ({ type: 'subscribe', payload: { subscriptionIdentifier: id, rtspUrl: 'rtsp://cam/1', modelUrl: 'http://m/a.mpta', modelName: 'A', modelId: 1 } });

test('state reports on connect and every heartbeat, in the protocol shape', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { registry } = fakeRegistry();
  const link = new CmsLink(registry, usage, { heartbeatIntervalMs: 2000, reconnectGraceMs: 60_000 }, quiet);
  const socket = new FakeSocket();
  link.attach(socket as unknown as WebSocket, 'test');
  assert.deepEqual(socket.sent, [{ type: 'stateReport', cpuUsage: 12.5, memoryUsage: 40, gpuUsage: null, gpuMemoryUsage: null, cameraConnections: [] }]);
  t.mock.timers.tick(1999);
  assert.equal(socket.sent.length, 1);
  t.mock.timers.tick(1);
  assert.equal(socket.sent.length, 2);
  socket.receive(sub('d;c'));
  t.mock.timers.tick(2000);
  assert.deepEqual(socket.sent[2]!.cameraConnections, [{ subscriptionIdentifier: 'd;c', modelId: 1, modelName: 'A', online: true }]);
  socket.close();
  t.mock.timers.tick(10_000);
  assert.equal(socket.sent.length, 3, 'no heartbeats after close');
  link.close();
});

test('bad messages are ignored without closing; good ones after them still work', () => {
  const { registry, calls } = fakeRegistry();
  const link = new CmsLink(registry, usage, { heartbeatIntervalMs: 60_000, reconnectGraceMs: 60_000 }, quiet);
  const socket = new FakeSocket();
  link.attach(socket as unknown as WebSocket, 'test');
  socket.receive('not json');
  socket.receive({ type: 'fly' });
  socket.receive({ type: 'subscribe', payload: { subscriptionIdentifier: 'nosemicolon' } });
  socket.emit('message', Buffer.from([0, 1, 2]), true);
  socket.receive({ type: 'setSessionId', payload: { displayIdentifier: 'd', sessionId: 5 } });
  socket.receive({ type: 'patchSessionResult', payload: { sessionId: 5, success: false, message: 'nope' } });
  socket.receive(sub('d;c'));
  socket.receive({ type: 'requestState' });
  assert.deepEqual(calls, ['session d=5', 'subscribe d;c']);
  assert.equal(socket.readyState, socket.OPEN);
  assert.equal(socket.sent.at(-1).cameraConnections.length, 1, 'requestState is answered at once');
  link.close();
});

test('grace period: subscriptions survive a reconnect inside it and are cleared after it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { registry, calls, subs } = fakeRegistry();
  const link = new CmsLink(registry, usage, { heartbeatIntervalMs: 2000, reconnectGraceMs: 60_000 }, quiet);
  const first = new FakeSocket();
  link.attach(first as unknown as WebSocket, 'a');
  first.receive(sub('d;c'));
  first.close();
  t.mock.timers.tick(59_000);
  assert.equal(subs.size, 1, 'still there within the grace period');

  const second = new FakeSocket();
  link.attach(second as unknown as WebSocket, 'b');
  assert.equal(second.sent[0].cameraConnections[0].subscriptionIdentifier, 'd;c', 'reported to the new connection');
  t.mock.timers.tick(120_000);
  assert.equal(subs.size, 1, 'the reconnect cancelled the cleanup');
  assert.ok(!calls.includes('clear'));

  second.close();
  t.mock.timers.tick(59_999);
  assert.equal(subs.size, 1);
  t.mock.timers.tick(1);
  assert.equal(subs.size, 0, 'cleared when the grace period ran out');
  assert.ok(calls.includes('clear'));
  link.close();
});

test('one of two connections dropping starts no grace period; results go to every connection', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { registry, subs } = fakeRegistry();
  const link = new CmsLink(registry, usage, { heartbeatIntervalMs: 2000, reconnectGraceMs: 1000 }, quiet);
  const a = new FakeSocket();
  const b = new FakeSocket();
  link.attach(a as unknown as WebSocket, 'a');
  link.attach(b as unknown as WebSocket, 'b');
  a.receive(sub('d;c'));
  a.close();
  t.mock.timers.tick(5000);
  assert.equal(subs.size, 1);
  const message = { type: 'imageDetection' as const, subscriptionIdentifier: 'd;c', timestamp: new Date(0).toISOString(), data: { detection: { x: 1 }, modelId: 1, modelName: 'A' } };
  link.broadcast(message);
  assert.deepEqual(b.sent.at(-1), message);
  b.close();
  link.broadcast(message);
  assert.equal(link.undelivered, 1, 'counted, not queued, while no CMS is connected');
  link.close();
  mock.timers.reset();
});

test('invalid UTF-8 is ignored like any bad message; ignored-message lines are capped per connection', () => {
  const lines: any[] = [];
  const sink = new Writable({ write: (chunk, _e, cb) => (lines.push(JSON.parse(String(chunk))), cb()) });
  const { registry, calls } = fakeRegistry();
  const link = new CmsLink(registry, usage, { heartbeatIntervalMs: 60_000, reconnectGraceMs: 60_000 }, pino({ level: 'info' }, sink));
  const socket = new FakeSocket();
  link.attach(socket as unknown as WebSocket, 'test');
  // Would be a valid requestState were the bad byte replaced with U+FFFD.
  socket.emit('message', Buffer.concat([Buffer.from('{"type":"requestState","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), false);
  assert.equal(socket.sent.length, 1, 'only the report sent on connect');
  for (let i = 0; i < 500; i++) socket.receive({ type: `junk-${i}` });
  socket.receive(sub('d;c'));
  assert.deepEqual(calls, ['subscribe d;c']);
  const ignored = lines.filter((l) => l.msg === 'CMS message ignored');
  assert.equal(ignored[0].reason, 'text frame is not valid UTF-8');
  assert.equal(ignored.length, 20, 'a burst of lines, not 501');
  socket.close();
  assert.equal(lines.find((l) => l.msg === 'CMS disconnected').ignoredNotLogged, 481);
  link.close();
});
