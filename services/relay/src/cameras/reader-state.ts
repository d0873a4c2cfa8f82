/**
 * The life of a camera reader as a state machine (pure): the states, the moves allowed
 * between them, and what "online" means. CameraReader changes state only through one method
 * that asks `canMove` first, so a late callback (a poll that ends after a stop, an ffmpeg
 * exit after a reopen) cannot put a reader somewhere it should not be.
 *
 *   idle ──start──> connecting ──first frame──> streaming
 *   connecting | streaming ──reopen (rate changed, keyframes too sparse)──> connecting
 *   connecting | streaming ──ended / stalled / repeated──> backoff ──timer or port answers──> connecting
 *   connecting | streaming ──ended, max_retries spent──> failed
 *   any but stopped ──stop──> stopped
 */

export type ReaderState =
  /** Made, not started. */
  | 'idle'
  /** The stream is being opened; no frame from it yet. */
  | 'connecting'
  /** Frames arrive (the watchdog ends the stream when they stop). */
  | 'streaming'
  /** The stream ended; waiting out the backoff before reconnecting. */
  | 'backoff'
  /** max_retries reached: the reader gives up until its last user releases it. */
  | 'failed'
  /** Stopped by its last user; final. */
  | 'stopped';

export const READER_STATES: readonly ReaderState[] = ['idle', 'connecting', 'streaming', 'backoff', 'failed', 'stopped'];

/** How entering each state is logged: level and message (operators and tests look for them). */
export const ENTERED: Readonly<Record<ReaderState, { level: 'debug' | 'info' | 'warn' | 'error'; msg: string }>> = {
  idle: { level: 'debug', msg: 'camera reader created' },
  connecting: { level: 'debug', msg: 'camera connecting' },
  streaming: { level: 'info', msg: 'camera streaming' },
  backoff: { level: 'warn', msg: 'camera stream ended; reconnecting' },
  failed: { level: 'error', msg: 'camera failed; max_retries reached, giving up' },
  stopped: { level: 'debug', msg: 'camera reader stopped' },
};

/** The one table of allowed moves: from -> to. */
const MOVES: Readonly<Record<ReaderState, readonly ReaderState[]>> = {
  idle: ['connecting', 'stopped'],
  connecting: ['streaming', 'connecting', 'backoff', 'failed', 'stopped'],
  streaming: ['connecting', 'backoff', 'failed', 'stopped'],
  backoff: ['connecting', 'stopped'],
  failed: ['stopped'],
  stopped: [],
};

export function canMove(from: ReaderState, to: ReaderState): boolean {
  return MOVES[from].includes(to);
}

/** States with a stream open (or opening): frames count, failures end it. */
export function hasStream(state: ReaderState): boolean {
  return state === 'connecting' || state === 'streaming';
}

/** Online: streaming, and the last frame arrived within the watchdog window. */
export function isOnline(state: ReaderState, lastFrameAt: number | null, now: number, windowMs: number): boolean {
  return state === 'streaming' && lastFrameAt !== null && now - lastFrameAt <= windowMs;
}
