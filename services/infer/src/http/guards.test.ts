import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { declaredLength, hasBody, lingerOnClose, tokenDigest, tokenMatches } from './guards.js';

test('tokenMatches accepts only the exact value, whatever the length given', () => {
  const expected = tokenDigest('Bearer s3cret');
  assert.ok(tokenMatches('Bearer s3cret', expected));
  for (const given of [undefined, '', 'Bearer s3cre', 'Bearer s3cretx', 'bearer s3cret', 'Bearer S3cret', 'x'.repeat(10_000)]) {
    assert.equal(tokenMatches(given, expected), false, String(given));
  }
});

test('declaredLength and hasBody read the framing headers', () => {
  assert.equal(declaredLength({ 'content-length': '1234' }), 1234);
  assert.equal(declaredLength({}), undefined);
  assert.equal(declaredLength({ 'content-length': '-1' }), undefined);
  assert.equal(declaredLength({ 'content-length': '12abc' }), undefined);
  assert.ok(hasBody({ 'content-length': '1' }));
  assert.ok(hasBody({ 'transfer-encoding': 'chunked' }));
  assert.equal(hasBody({ 'content-length': '0' }), false);
  assert.equal(hasBody({}), false);
});

test('lingerOnClose: FIN first, then the socket is destroyed once the peer closes or the linger runs out', async () => {
  const serverSide = new Promise<Socket>((resolve) => {
    const server = createServer((s) => {
      server.close();
      resolve(s);
    }).listen(0, '127.0.0.1', () => {
      const peer = connect((server.address() as AddressInfo).port, '127.0.0.1');
      peer.on('error', () => undefined);
      peer.on('end', () => setTimeout(() => peer.destroy(), 5_000).unref());
    });
  });
  const socket = await serverSide;
  lingerOnClose(socket, 100);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  (socket as Socket & { destroySoon: () => void }).destroySoon();
  assert.equal(socket.writableEnded, true, 'FIN sent at once');
  assert.equal(socket.destroyed, false, 'not reset at once');
  // The peer above never closes within the test: the linger limit ends it.
  await closed;
  assert.ok(socket.destroyed);
});
