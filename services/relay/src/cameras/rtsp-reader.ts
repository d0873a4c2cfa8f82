/**
 * An RTSP camera read by one ffmpeg child (RTSP over TCP), which decodes only what the
 * subscriptions need: at or below the keyframe-only rate it skips non-key frames entirely
 * (the decoder's cost drops to the keyframes), and a select filter passes the first frame of
 * every 1/rate-second slot, so at most `rate` frames per second and never a duplicate.
 * Frames arrive as MJPEG on stdout. A camera whose keyframes turn out too sparse for the
 * needed rate is reopened decoding every frame (its keyframe interval is remembered).
 *
 * ffmpeg probes a stream for 0.5 s instead of its default 5 s budget before the first
 * frame (about 3 s on a camera with 1 s keyframes): the RTSP session description already
 * names the codec. A camera whose stream cannot be described that quickly (no parameter
 * sets in its SDP, sparse keyframes) is reopened with the full probe, remembered.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@detector-worker/shared/logging';
import { redactUrl } from '@detector-worker/shared/logging';
import { CameraReader, type FailureKind, type ReaderOptions } from './camera-reader.js';
import type { CameraSource } from './frame.js';
import { checkJpeg } from './jpeg-check.js';
import { JpegSplitter } from './jpeg-splitter.js';

export interface RtspOptions extends ReaderOptions {
  ffmpegPath: string;
  keyframeOnlyFps: number;
  jpegQuality: number;
}

/** ffmpeg's -q:v scale (2 best .. 31 worst) from a 1-100 quality. */
function mjpegQscale(quality: number): number {
  return Math.max(2, Math.min(31, Math.round(31 - (quality / 100) * 29)));
}

/** Keyframes slower than this multiple of the needed interval are too sparse to decode alone. */
const SPARSE_FACTOR = 1.25;

/**
 * Whether decoding keyframes alone is enough: the rate is at or below the configured
 * keyframe-only rate, and the camera's keyframe interval (once measured) fits the rate.
 */
export function decodeKeyframesOnly(rate: number, keyframeOnlyFps: number, keyframeIntervalMs?: number): boolean {
  if (rate > keyframeOnlyFps) return false;
  return keyframeIntervalMs === undefined || keyframeIntervalMs <= (SPARSE_FACTOR * 1000) / rate;
}

/**
 * The keyframe interval when keyframes-only decoding delivers too few frames for `rate`,
 * judged from the delivery times since the stream opened (ms); undefined while it is fine.
 */
export function sparseKeyframeInterval(times: readonly number[], now: number, rate: number): number | undefined {
  const need = 1000 / rate;
  const last = times.at(-1);
  // Waiting far longer than a frame slot since the last keyframe: at least that sparse.
  if (last !== undefined && now - last > 2.5 * need) return now - last;
  if (times.length < 4) return undefined;
  const mean = (last! - times[0]!) / (times.length - 1);
  return mean > SPARSE_FACTOR * need ? mean : undefined;
}

/** ffmpeg's complaints when the short probe did not learn the stream's parameters. */
const PROBE_TOO_SHORT = /could not find codec parameters|unspecified size|dimensions not set/i;

/** What kind of failure an ffmpeg exit was, from its last stderr line. */
export function ffmpegFailureKind(code: number | null, stderr: string): FailureKind {
  if (/connection refused|no route to host|network is unreachable|name or service not known|host is down/i.test(stderr)) return 'connect';
  if (/timed out|timeout/i.test(stderr)) return 'timeout';
  if (/server returned 4|server returned 5|401|403|404|unauthorized|not found/i.test(stderr)) return 'http_status';
  return code === null ? 'error' : 'exited';
}

export function ffmpegArgs(url: string, rate: number, options: Pick<RtspOptions, 'keyframeOnlyFps' | 'jpegQuality'> & { keyframeIntervalMs?: number; fullProbe?: boolean }): string[] {
  const keyframesOnly = decodeKeyframesOnly(rate, options.keyframeOnlyFps, options.keyframeIntervalMs);
  const perSecond = rate.toFixed(6);
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    '-rtsp_transport',
    'tcp',
    // Socket I/O timeout (µs): a dead camera ends the process instead of hanging it.
    '-timeout',
    '10000000',
    ...(options.fullProbe ? [] : ['-analyzeduration', '500000']),
    ...(keyframesOnly ? ['-skip_frame', 'nokey'] : []),
    // One decoding thread: frame threading buys nothing at these rates and costs a set of
    // 1080p frame buffers (~100 MB) per camera.
    '-threads',
    '1',
    '-i',
    url,
    '-an',
    '-sn',
    '-dn',
    // The first frame of each 1/rate slot. Slots rather than "rate seconds since the last
    // one" so keyframes a hair closer than the interval are not skipped every other time,
    // and "not equal" rather than "greater" so a timestamp jump backwards cannot stall it.
    '-vf',
    `select='isnan(prev_selected_t)+not(eq(floor(t*${perSecond})\\,floor(prev_selected_t*${perSecond})))'`,
    '-vsync',
    'vfr',
    '-f',
    'image2pipe',
    '-c:v',
    'mjpeg',
    // The standard Huffman tables: one pass over each frame instead of two (measured: 18 % less
    // encoding CPU for 4 % more bytes; the frame goes over loopback or is decoded locally).
    '-huffman',
    'default',
    // Full-range 4:2:0, what the MJPEG encoder wants (avoids a swscale warning per frame).
    '-pix_fmt',
    'yuvj420p',
    '-q:v',
    String(mjpegQscale(options.jpegQuality)),
    'pipe:1',
  ];
}

export class RtspReader extends CameraReader {
  private child: ChildProcess | undefined;
  /** The camera's keyframe interval, once keyframes-only decoding showed it too sparse. */
  private keyframeIntervalMs: number | undefined;
  /** Delivery times since the stream opened in keyframes-only mode (the last few). */
  private keyframeTimes: number[] = [];
  /** Set once the short probe failed on this camera. */
  private fullProbe = false;
  /** Frames from the pipe that were not complete JPEGs (logged once in a while). */
  private invalidFrames = 0;

  constructor(source: CameraSource, private readonly rtsp: RtspOptions, logger: Logger, rate: number) {
    super(source, rtsp, logger, rate);
  }

  /** Whether an ffmpeg child is running now (tests count them). */
  get processRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  protected override rateNeedsRestart(before: number, after: number): boolean {
    return before !== after;
  }

  /** Whether the running ffmpeg decodes keyframes only. */
  get keyframesOnly(): boolean {
    return decodeKeyframesOnly(this.rate, this.rtsp.keyframeOnlyFps, this.keyframeIntervalMs);
  }

  protected override deliver(jpeg: Buffer, size: { width: number; height: number }): boolean {
    if (!super.deliver(jpeg, size)) return false;
    if (this.keyframesOnly) {
      this.keyframeTimes.push(Date.now());
      if (this.keyframeTimes.length > 10) this.keyframeTimes.shift();
      this.checkKeyframePace();
    }
    return true;
  }

  protected override tick(): void {
    if (this.keyframesOnly) this.checkKeyframePace();
  }

  private checkKeyframePace(): void {
    const interval = sparseKeyframeInterval(this.keyframeTimes, Date.now(), this.rate);
    if (interval === undefined) return;
    this.keyframeIntervalMs = Math.round(interval);
    this.logger.info({ keyframeIntervalMs: this.keyframeIntervalMs, rate: this.rate }, 'keyframes too sparse for the needed rate; decoding every frame');
    this.reopen('keyframes too sparse');
  }

  protected open(): void {
    this.keyframeTimes = [];
    const args = ffmpegArgs(this.source.url, this.rate, { ...this.rtsp, keyframeIntervalMs: this.keyframeIntervalMs, fullProbe: this.fullProbe });
    this.logger.debug({ url: redactUrl(this.source.url), rate: this.rate, keyframesOnly: this.keyframesOnly }, 'starting ffmpeg');
    const child = spawn(this.rtsp.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const splitter = new JpegSplitter();
    child.stdout!.on('data', (chunk: Buffer) => {
      // A child being closed (reopen, stop) may still flush frames: they are not this stream's.
      if (this.child !== child) return;
      for (const jpeg of splitter.push(chunk)) {
        // ffmpeg's own output is nearly always whole; the check walks headers and memchr's
        // through the scan data (microseconds per frame), and keeps a torn frame from infer.
        const check = checkJpeg(jpeg);
        if (check.ok) this.deliver(jpeg, check);
        else this.invalidFrame(check.reason);
      }
    });
    let lastStderr = '';
    let probeTooShort = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        lastStderr = line.trim().slice(0, 500);
        if (!this.fullProbe && PROBE_TOO_SHORT.test(lastStderr)) probeTooShort = true;
        this.logger.debug({ ffmpeg: lastStderr }, 'ffmpeg');
      }
    });
    child.on('error', (err) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.ended(`ffmpeg could not start: ${err.message}`, 'error');
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      const reason = `ffmpeg exited (${signal ?? code})${lastStderr ? `: ${redactUrl(lastStderr)}` : ''}`;
      if (probeTooShort && !this.fullProbe) {
        this.fullProbe = true;
        this.logger.info({ reason }, 'the stream could not be described by a short probe; probing fully from now on');
      }
      this.ended(reason, ffmpegFailureKind(code, lastStderr));
    });
  }

  private invalidFrame(reason: string): void {
    this.invalidFrames++;
    this.refused(`ffmpeg frame is not a complete JPEG: ${reason}`, 'invalid_jpeg');
    // Powers of two: the first few, then ever more rarely, never a line per frame.
    if ((this.invalidFrames & (this.invalidFrames - 1)) === 0) this.logger.warn({ reason, invalidFrames: this.invalidFrames }, 'ffmpeg frame is not a complete JPEG; dropped');
  }

  protected close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      // ffmpeg finishes its output on SIGTERM; a stuck one gets SIGKILL.
      const force = setTimeout(() => child.kill('SIGKILL'), 2000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
