import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canMove, hasStream, isOnline, READER_STATES, type ReaderState } from './reader-state.js';

test('reader states: the allowed moves, and only those', () => {
  const allowed = new Set(READER_STATES.flatMap((from) => READER_STATES.filter((to) => canMove(from, to)).map((to) => `${from}->${to}`)));
  assert.deepEqual(
    [...allowed].sort(),
    [
      'backoff->connecting',
      'backoff->stopped',
      'connecting->backoff',
      'connecting->connecting',
      'connecting->failed',
      'connecting->stopped',
      'connecting->streaming',
      'failed->stopped',
      'idle->connecting',
      'idle->stopped',
      'streaming->backoff',
      'streaming->connecting',
      'streaming->failed',
      'streaming->stopped',
    ],
  );
  // The ones a late callback would try: none of them may happen.
  const refused: Array<[ReaderState, ReaderState]> = [['stopped', 'connecting'], ['stopped', 'backoff'], ['backoff', 'backoff'], ['backoff', 'streaming'], ['failed', 'connecting'], ['idle', 'streaming'], ['streaming', 'streaming']];
  for (const [from, to] of refused) assert.equal(canMove(from, to), false, `${from}->${to}`);
  for (const state of READER_STATES) assert.equal(canMove(state, 'stopped'), state !== 'stopped', `${state} can be stopped`);
});

test('online: streaming with a frame inside the watchdog window', () => {
  assert.equal(isOnline('streaming', 1000, 1500, 500), true);
  assert.equal(isOnline('streaming', 1000, 1501, 500), false, 'silent past the window');
  assert.equal(isOnline('streaming', null, 1000, 500), false);
  for (const state of ['idle', 'connecting', 'backoff', 'failed', 'stopped'] as const) assert.equal(isOnline(state, 1000, 1000, 500), false, state);
  assert.deepEqual(READER_STATES.filter(hasStream), ['connecting', 'streaming']);
});
