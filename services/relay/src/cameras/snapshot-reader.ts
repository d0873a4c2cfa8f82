/** An HTTP snapshot camera: one undici GET every interval, with a timeout. */
import { request } from 'undici';
import type { Logger } from '@detector-worker/shared/logging';
import { readBodyCapped } from '../http-body.js';
import { CameraReader, type ReaderOptions } from './camera-reader.js';
import type { CameraSource } from './frame.js';

export interface SnapshotOptions extends ReaderOptions {
  timeoutMs: number;
  maxBytes?: number;
}

export class SnapshotReader extends CameraReader {
  private timer: NodeJS.Timeout | undefined;
  private abort: AbortController | undefined;
  protected override readonly detectsRepeats = false;

  constructor(source: CameraSource, private readonly snapshot: SnapshotOptions, logger: Logger, rate: number) {
    super(source, snapshot, logger, rate);
  }

  /** The fastest interval any user asked for (rate is the max over users). */
  private get intervalMs(): number {
    return Math.max(50, Math.round(1000 / this.rate));
  }

  protected open(): void {
    const abort = new AbortController();
    this.abort = abort;
    const poll = async (): Promise<void> => {
      if (abort.signal.aborted) return;
      const started = Date.now();
      try {
        const res = await request(this.source.url, { signal: AbortSignal.any([abort.signal, AbortSignal.timeout(this.snapshot.timeoutMs)]), headersTimeout: this.snapshot.timeoutMs, bodyTimeout: this.snapshot.timeoutMs });
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`snapshot answered HTTP ${res.statusCode}`);
        }
        const max = this.snapshot.maxBytes ?? 32 * 1024 * 1024;
        const declared = Number(res.headers['content-length']);
        if (declared > max) {
          res.body.destroy();
          throw new Error(`snapshot of ${declared} bytes is over the ${max} byte limit`);
        }
        const body = await readBodyCapped(res.body, max);
        if (!body) throw new Error(`snapshot is over the ${max} byte limit`);
        if (body[0] !== 0xff || body[1] !== 0xd8) throw new Error('snapshot is not a JPEG');
        if (abort.signal.aborted) return;
        this.deliver(body);
      } catch (err) {
        if (abort.signal.aborted) return;
        this.ended(err instanceof Error ? err.message : String(err));
        return;
      }
      this.timer = setTimeout(() => void poll(), Math.max(0, this.intervalMs - (Date.now() - started)));
      this.timer.unref();
    };
    void poll();
  }

  protected close(): void {
    this.abort?.abort();
    this.abort = undefined;
    clearTimeout(this.timer);
  }
}
