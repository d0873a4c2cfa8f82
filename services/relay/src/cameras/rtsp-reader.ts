/**
 * An RTSP camera read by one ffmpeg child (RTSP over TCP), which decodes only what the
 * subscriptions need: at or below the keyframe-only rate it skips non-key frames entirely
 * (the decoder's cost drops to the keyframes), and a select filter passes at most `rate`
 * frames per second without ever duplicating one. Frames arrive as MJPEG on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@detector-worker/shared/logging';
import { redactUrl } from '@detector-worker/shared/logging';
import { CameraReader, type ReaderOptions } from './camera-reader.js';
import type { CameraSource } from './frame.js';
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

export function ffmpegArgs(url: string, rate: number, options: Pick<RtspOptions, 'keyframeOnlyFps' | 'jpegQuality'>): string[] {
  const keyframesOnly = rate <= options.keyframeOnlyFps;
  const interval = (1 / rate).toFixed(4);
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
    '-vf',
    `select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,${interval})'`,
    '-vsync',
    'vfr',
    '-f',
    'image2pipe',
    '-c:v',
    'mjpeg',
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

  protected open(): void {
    const args = ffmpegArgs(this.source.url, this.rate, this.rtsp);
    this.logger.debug({ url: redactUrl(this.source.url), rate: this.rate, keyframesOnly: this.rate <= this.rtsp.keyframeOnlyFps }, 'starting ffmpeg');
    const child = spawn(this.rtsp.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const splitter = new JpegSplitter();
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const jpeg of splitter.push(chunk)) this.deliver(jpeg);
    });
    let lastStderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        lastStderr = line.trim().slice(0, 500);
        this.logger.debug({ ffmpeg: lastStderr }, 'ffmpeg');
      }
    });
    child.on('error', (err) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.ended(`ffmpeg could not start: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.ended(`ffmpeg exited (${signal ?? code})${lastStderr ? `: ${redactUrl(lastStderr)}` : ''}`);
    });
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
