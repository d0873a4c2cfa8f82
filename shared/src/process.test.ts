import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { asError, installCrashHandlers } from './process.js';

function capture(): { logger: pino.Logger; lines: () => Array<Record<string, any>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

test('asError keeps Errors and wraps anything else thrown', () => {
  const e = new TypeError('boom');
  assert.equal(asError(e), e);
  assert.match(asError('plain string').message, /non-Error value thrown: plain string/);
  assert.match(asError({ code: 7 }).message, /\{"code":7\}/);
  assert.match(asError(undefined).message, /undefined/);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.match(asError(cyclic).message, /object Object/);
  assert.ok(asError(42n).stack);
});

test('an uncaught exception is logged at fatal with its stack, then the process exits 1', async () => {
  const { logger, lines } = capture();
  const target = new EventEmitter();
  const saved = process.exitCode;
  const exited = new Promise<number>((resolve) => installCrashHandlers(logger, { target: target as any, exit: resolve }));
  target.emit('uncaughtException', new RangeError('out of range'));
  // A second failure while the first is being handled does not log or exit twice.
  target.emit('unhandledRejection', new Error('second'));
  assert.equal(await exited, 1);
  process.exitCode = saved;
  const fatal = lines().filter((l) => l.level === 60);
  assert.equal(fatal.length, 1);
  assert.equal(fatal[0]!.kind, 'uncaughtException');
  assert.equal(fatal[0]!.err.type, 'RangeError');
  assert.match(fatal[0]!.err.stack, /out of range\n\s+at /);
});

test('an unhandled rejection with a non-Error reason is logged and exits with the chosen code', async () => {
  const { logger, lines } = capture();
  const target = new EventEmitter();
  const saved = process.exitCode;
  let uninstall = (): void => {};
  const exited = new Promise<number>((resolve) => (uninstall = installCrashHandlers(logger, { target: target as any, exit: resolve, exitCode: 3 })));
  target.emit('unhandledRejection', 'just a string');
  assert.equal(await exited, 3);
  process.exitCode = saved;
  uninstall();
  assert.equal(target.listenerCount('uncaughtException') + target.listenerCount('unhandledRejection'), 0);
  const fatal = lines().find((l) => l.level === 60)!;
  assert.equal(fatal.kind, 'unhandledRejection');
  assert.match(fatal.err.message, /just a string/);
});

test('a logger that throws still ends in an exit', async () => {
  const target = new EventEmitter();
  const broken = { fatal: () => { throw new Error('log down'); }, flush: () => {} } as unknown as pino.Logger;
  const saved = process.exitCode;
  const writes: string[] = [];
  const realWrite = process.stderr.write;
  process.stderr.write = ((s: string) => (writes.push(String(s)), true)) as typeof process.stderr.write;
  try {
    const exited = new Promise<number>((resolve) => installCrashHandlers(broken, { target: target as any, exit: resolve }));
    target.emit('uncaughtException', new Error('original'));
    assert.equal(await exited, 1);
  } finally {
    process.stderr.write = realWrite;
    process.exitCode = saved;
  }
  assert.match(writes.join(''), /logging failed: Error: log down.*original/s);
});

test('a flush that never calls back is cut off by the timeout', async () => {
  const target = new EventEmitter();
  const stuck = { fatal: () => {}, flush: () => {} } as unknown as pino.Logger;
  const saved = process.exitCode;
  const exited = new Promise<number>((resolve) => installCrashHandlers(stuck, { target: target as any, exit: resolve, flushTimeoutMs: 50 }));
  target.emit('uncaughtException', new Error('x'));
  assert.equal(await exited, 1);
  process.exitCode = saved;
});
