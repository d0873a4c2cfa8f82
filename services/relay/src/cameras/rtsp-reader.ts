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
import { PpmSplitter, PreviewPairer, type Paired, type Preview } from './preview.js';
import { TsGate, type GateMode } from './ts-gate.js';

export interface RtspOptions extends ReaderOptions {
  ffmpegPath: string;
  keyframeOnlyFps: number;
  jpegQuality: number;
  /**
   * Demux and decode in two ffmpeg processes with a keyframe gate between them (ts-gate.ts):
   * a quiet camera then decodes keyframes only without reopening its RTSP session, and wakes
   * at once (IDLE_SLOW_CAMERA).
   */
  gated?: boolean;
  /** Width of each frame's preview (preview.ts; FRAME_PREVIEW_WIDTH); 0 or absent: none. */
  previewWidth?: number;
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

/** ffmpeg's words when a codec cannot travel through MPEG-TS to the decoder (exported for its test). */
export const NOT_IN_TS = /muxed as a private data stream|does not contain any stream|not supported (?:by|in) MPEG-?TS/i;

/** What kind of failure an ffmpeg exit was, from its last stderr line. */
export function ffmpegFailureKind(code: number | null, stderr: string): FailureKind {
  if (/connection refused|no route to host|network is unreachable|name or service not known|host is down/i.test(stderr)) return 'connect';
  if (/timed out|timeout/i.test(stderr)) return 'timeout';
  if (/server returned 4|server returned 5|401|403|404|unauthorized|not found/i.test(stderr)) return 'http_status';
  return code === null ? 'error' : 'exited';
}

type ArgOptions = Pick<RtspOptions, 'keyframeOnlyFps' | 'jpegQuality' | 'previewWidth'> & { keyframeIntervalMs?: number; fullProbe?: boolean };

/** Opening the camera: RTSP over TCP, a socket timeout, the probe budget (shared by both ways of reading). */
function inputArgs(url: string, options: ArgOptions, keyframesOnly: boolean): string[] {
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
  ];
}

/**
 * From decoded video to at most `rate` MJPEG frames a second on stdout and, with a preview
 * width, the same frames scaled down as PPM on fd 3 (preview.ts).
 */
function outputArgs(rate: number, options: ArgOptions): string[] {
  const perSecond = rate.toFixed(6);
  // The first frame of each 1/rate slot. Slots rather than "rate seconds since the last
  // one" so keyframes a hair closer than the interval are not skipped every other time,
  // and "not equal" rather than "greater" so a timestamp jump backwards cannot stall it.
  const select = `select='isnan(prev_selected_t)+not(eq(floor(t*${perSecond})\\,floor(prev_selected_t*${perSecond})))'`;
  const preview = options.previewWidth ?? 0;
  const jpeg = [
    '-vsync',
    'vfr',
    '-f',
    'image2pipe',
    '-c:v',
    'mjpeg',
    // One encoding thread. With more, ffmpeg encodes MJPEG frame-threaded and holds back one
    // frame per extra thread: each JPEG left only when the next selected frame came (0.5 s
    // late at 2 fps, a whole keyframe interval late for a slow camera, many frames on a
    // machine with many cores).
    '-threads',
    '1',
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
  if (preview <= 0) return ['-vf', select, ...jpeg];
  // One selection split in two, so both outputs carry the same frames in the same order.
  const graph = `[0:v]${select},split=2[frame][small];[small]${previewFilter(preview)}[preview]`;
  return ['-filter_complex', graph, '-map', '[frame]', ...jpeg, '-map', '[preview]', '-vsync', 'vfr', '-f', 'image2pipe', '-c:v', 'ppm', 'pipe:3'];
}

/**
 * The filter that makes a frame's preview: at most `width` wide, even height, RGB (exported for
 * tests). swscale's `area` averages the pixels it drops, ~3 ms for a 1080p frame; the cheaper
 * `fast_bilinear` (under 1 ms) aliases, and on the 1080p fixture photo the detector lost two
 * small cars and moved a truck's box by 72 px (test/infer-downscale.test.ts).
 */
export function previewFilter(width: number): string {
  return `scale=w='min(${Math.round(width)}\\,iw)':h=-2:flags=area,format=rgb24`;
}

/** One ffmpeg that reads, decodes and encodes the camera. */
export function ffmpegArgs(url: string, rate: number, options: ArgOptions): string[] {
  const keyframesOnly = decodeKeyframesOnly(rate, options.keyframeOnlyFps, options.keyframeIntervalMs);
  return [...inputArgs(url, options, keyframesOnly), ...outputArgs(rate, options)];
}

/** The gated pair: a demuxer that only remuxes to MPEG-TS, and a decoder that reads the gate's output. */
export function gatedFfmpegArgs(url: string, rate: number, options: ArgOptions): { demuxer: string[]; decoder: string[] } {
  return {
    demuxer: [...inputArgs(url, options, false), '-c:v', 'copy', '-f', 'mpegts', 'pipe:1'],
    // low_delay: a picture leaves the decoder as soon as it is decoded (a keyframe passed alone
    // must not wait for the pictures the gate holds back).
    decoder: ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-analyzeduration', '500000', '-fflags', 'nobuffer', '-flags', 'low_delay', '-threads', '1', '-f', 'mpegts', '-i', 'pipe:0', '-an', ...outputArgs(rate, options)],
  };
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
  /** Gated reading: the demuxer child, the gate, and the rate the decoder selects at. */
  private demuxer: ChildProcess | undefined;
  private gate: TsGate | undefined;
  private selectRate: number | undefined;
  /** Set once the camera's codec proved unable to pass through MPEG-TS. */
  private ungated = false;

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

  /** Gated reading: the gate's mode and its packet counts (tests, the debug page). */
  get gateState(): { mode: GateMode; passed: number; skipped: number; demuxerPid: number | undefined } | undefined {
    return this.gate && { mode: this.gate.current, passed: this.gate.passed, skipped: this.gate.skipped, demuxerPid: this.demuxer?.pid };
  }

  protected override rateNeedsRestart(before: number, after: number): boolean {
    if (before === after) return false;
    // Gated: up to the decoder's own rate the gate gives what is needed (keyframes only, or
    // everything when the keyframes are too sparse), so only a faster need reopens.
    if (this.gate) return after > (this.selectRate ?? 0);
    return true;
  }

  /** Whether the running ffmpeg decodes keyframes only. */
  get keyframesOnly(): boolean {
    return decodeKeyframesOnly(this.rate, this.rtsp.keyframeOnlyFps, this.keyframeIntervalMs);
  }

  protected override deliver(jpeg: Buffer, size: { width: number; height: number }, preview?: Preview): boolean {
    if (!super.deliver(jpeg, size, preview)) return false;
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
    // Gated, opening the gate is enough; otherwise ffmpeg is reopened without -skip_frame.
    if (this.gate) this.applyGate();
    else this.reopen('keyframes too sparse');
  }

  protected open(): void {
    this.keyframeTimes = [];
    const options = { ...this.rtsp, keyframeIntervalMs: this.keyframeIntervalMs, fullProbe: this.fullProbe };
    this.logger.debug({ url: redactUrl(this.source.url), rate: this.rate, keyframesOnly: this.keyframesOnly, gated: this.rtsp.gated === true }, 'starting ffmpeg');
    if (!this.rtsp.gated || this.ungated) {
      this.child = this.spawnFfmpeg(ffmpegArgs(this.source.url, this.rate, options), 'reader');
      this.readFrames(this.child);
      return;
    }
    // The decoder selects at the full rate; a slower need only closes the gate to keyframes
    // (opened while slow, it keeps the full rate it had, so waking needs no reopening).
    this.selectRate = this.keyframesOnly ? Math.max(this.rate, this.selectRate ?? 0) : this.rate;
    const args = gatedFfmpegArgs(this.source.url, this.selectRate, options);
    const demuxer = this.spawnFfmpeg(args.demuxer, 'demuxer');
    const decoder = this.spawnFfmpeg(args.decoder, 'decoder', true);
    this.demuxer = demuxer;
    this.child = decoder;
    const gate = new TsGate();
    this.gate = gate;
    this.applyGate();
    // The decoder's stdin fails with EPIPE when it exits first; its exit ends the stream.
    decoder.stdin!.on('error', () => undefined);
    demuxer.stdout!.on('data', (chunk: Buffer) => {
      if (this.demuxer !== demuxer) return;
      const { out, error } = gate.push(chunk);
      this.toDecoder(decoder, out);
      if (error) this.ended(`camera stream unreadable: ${error}`, 'error');
    });
    this.readFrames(decoder);
  }

  /** Frames of a child's MJPEG stdout, each with its preview from fd 3 when previews are on. */
  private readFrames(child: ChildProcess): void {
    const splitter = new JpegSplitter();
    const previews = this.previewsOn ? child.stdio[3] : null;
    const pairer = previews ? new PreviewPairer<Sized>() : undefined;
    let broken = false;
    let wait: NodeJS.Timeout | undefined;
    const deliverAll = (ready: Array<Paired<Sized>>) => {
      for (const { jpeg, preview } of ready) this.deliver(jpeg.data, jpeg, preview);
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      // A child being closed (reopen, stop) may still flush frames: they are not this stream's.
      if (this.child !== child) return;
      for (const jpeg of splitter.push(chunk)) {
        // ffmpeg's own output is nearly always whole; the check walks headers and memchr's
        // through the scan data (microseconds per frame), and keeps a torn frame from infer.
        const check = checkJpeg(jpeg);
        if (!check.ok) this.invalidFrame(check.reason);
        else if (!pairer || broken) this.deliver(jpeg, check);
        else {
          deliverAll(pairer.pushJpeg({ data: jpeg, width: check.width, height: check.height }));
          // Both outputs are written together; a preview later than this is not coming soon.
          clearTimeout(wait);
          if (pairer.pending) wait = setTimeout(() => this.child === child && deliverAll(pairer.flush()), PREVIEW_WAIT_MS);
        }
      }
    });
    if (!previews || !pairer) return;
    const ppm = new PpmSplitter();
    // Read to the end even once broken: ffmpeg blocks on a full pipe, and its JPEGs with it.
    previews.on('data', (chunk: Buffer) => {
      if (this.child !== child || broken) return;
      const { images, error } = ppm.push(chunk);
      for (const image of images) deliverAll(pairer.pushPreview(image));
      if (!pairer.pending) clearTimeout(wait);
      if (error) {
        broken = true;
        clearTimeout(wait);
        deliverAll(pairer.flush());
        this.logger.warn({ reason: error }, 'frame previews unreadable; cutting images from the JPEGs until the camera reopens');
      }
    });
    previews.on('error', () => undefined);
  }

  /** Whether frames come with previews (FRAME_PREVIEW_WIDTH). */
  private get previewsOn(): boolean {
    return (this.rtsp.previewWidth ?? 0) > 0;
  }

  /** Writes to the decoder; one that stops reading (megabytes queued) ends the stream rather than the relay's memory. */
  private toDecoder(decoder: ChildProcess, packets: Buffer[]): void {
    const stdin = decoder.stdin!;
    for (const p of packets) stdin.write(p);
    if (stdin.writableLength > MAX_DECODER_BACKLOG) this.ended('the decoder stopped reading', 'stalled');
  }

  /** Closes the gate to keyframes while the needed rate allows it; opening it releases the held pictures. */
  private applyGate(): void {
    const decoder = this.child;
    if (!this.gate || !decoder) return;
    const mode = this.keyframesOnly ? 'keyframes' : 'all';
    if (mode === this.gate.current) return;
    // Keyframe pacing is judged on this quiet spell's keyframes, not an earlier one's.
    if (mode === 'keyframes') this.keyframeTimes = [];
    this.toDecoder(decoder, this.gate.setMode(mode));
    this.logger.debug({ mode }, 'keyframe gate');
  }

  override setRate(fps: number): void {
    super.setRate(fps);
    this.applyGate();
  }

  /** Starts an ffmpeg; its exit ends the stream (the reader's own, or either of the gated pair). */
  private spawnFfmpeg(args: string[], role: 'reader' | 'demuxer' | 'decoder', withStdin = false): ChildProcess {
    // fd 3: the previews of the frames on stdout (outputArgs), from whichever child makes frames.
    const previews = role !== 'demuxer' && this.previewsOn;
    const child = spawn(this.rtsp.ffmpegPath, args, { stdio: [withStdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(previews ? (['pipe'] as const) : [])] });
    const mine = () => (role === 'demuxer' ? this.demuxer : this.child) === child;
    let lastStderr = '';
    let probeTooShort = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        lastStderr = line.trim().slice(0, 500);
        if (!this.fullProbe && role !== 'decoder' && PROBE_TOO_SHORT.test(lastStderr)) probeTooShort = true;
        if (role !== 'reader' && !this.ungated && NOT_IN_TS.test(lastStderr)) {
          // A codec MPEG-TS cannot carry (MJPEG over RTSP): this camera is read ungated from now on.
          this.ungated = true;
          this.logger.info({ ffmpeg: lastStderr }, 'the camera\'s codec cannot pass the keyframe gate; reading it with one ffmpeg');
        }
        this.logger.debug({ ffmpeg: lastStderr, role }, 'ffmpeg');
      }
    });
    child.on('error', (err) => {
      if (!mine()) return;
      this.ended(`ffmpeg (${role}) could not start: ${err.message}`, 'error');
    });
    child.on('exit', (code, signal) => {
      if (!mine()) return;
      const reason = `ffmpeg${role === 'reader' ? '' : ` (${role})`} exited (${signal ?? code})${lastStderr ? `: ${redactUrl(lastStderr)}` : ''}`;
      if (probeTooShort && !this.fullProbe) {
        this.fullProbe = true;
        this.logger.info({ reason }, 'the stream could not be described by a short probe; probing fully from now on');
      }
      this.ended(reason, ffmpegFailureKind(code, lastStderr));
    });
    return child;
  }

  private invalidFrame(reason: string): void {
    this.invalidFrames++;
    this.refused(`ffmpeg frame is not a complete JPEG: ${reason}`, 'invalid_jpeg');
    // Powers of two: the first few, then ever more rarely, never a line per frame.
    if ((this.invalidFrames & (this.invalidFrames - 1)) === 0) this.logger.warn({ reason, invalidFrames: this.invalidFrames }, 'ffmpeg frame is not a complete JPEG; dropped');
  }

  protected close(): Promise<void> {
    const children = [this.child, this.demuxer];
    this.child = undefined;
    this.demuxer = undefined;
    this.gate = undefined;
    return Promise.all(children.map(stopChild)).then(() => undefined);
  }
}

/** A JPEG whose preview has not come this long after it goes without one (ms). */
const PREVIEW_WAIT_MS = 100;

/** A checked JPEG waiting for its preview. */
interface Sized {
  data: Buffer;
  width: number;
  height: number;
}

/** Most bytes queued for a gated decoder before the stream counts as stalled. */
const MAX_DECODER_BACKLOG = 32 * 1024 * 1024;

function stopChild(child: ChildProcess | undefined): Promise<void> {
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
