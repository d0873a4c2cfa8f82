/**
 * One reader per camera source, shared by every subscription group that uses it and
 * stopped when the last one leaves (the protocol's "one stream per camera"). The reader
 * decodes at the highest rate any user needs.
 */
import { redactUrl, type Logger } from '@detector-worker/shared/logging';
import type { RelayConfig } from '../config.js';
import type { CameraReader } from './camera-reader.js';
import { cameraKey, type CameraSource } from './frame.js';
import { RtspReader } from './rtsp-reader.js';
import { SnapshotReader } from './snapshot-reader.js';

interface Entry {
  reader: CameraReader;
  /** user id -> frames per second it needs */
  users: Map<string, number>;
}

export class CameraHub {
  private readonly cameras = new Map<string, Entry>();
  /** Readers released but whose ffmpeg has not exited yet (shutdown waits for them). */
  private readonly stopping = new Set<Promise<void>>();

  constructor(
    private readonly config: RelayConfig,
    private readonly logger: Logger,
  ) {}

  acquire(source: CameraSource, userId: string, rate: number): CameraReader {
    const key = cameraKey(source);
    let entry = this.cameras.get(key);
    if (!entry) {
      entry = { reader: this.create(source, rate), users: new Map() };
      this.cameras.set(key, entry);
      entry.reader.start();
    }
    entry.users.set(userId, rate);
    entry.reader.setRate(Math.max(...entry.users.values()));
    return entry.reader;
  }

  release(source: CameraSource, userId: string): void {
    const key = cameraKey(source);
    const entry = this.cameras.get(key);
    if (!entry || !entry.users.delete(userId)) return;
    if (entry.users.size === 0) {
      this.cameras.delete(key);
      const stopped = entry.reader.stop();
      this.stopping.add(stopped);
      void stopped.finally(() => this.stopping.delete(stopped));
      this.logger.info({ camera: redactUrl(entry.reader.source.url) }, 'camera released; reader stopped');
    } else entry.reader.setRate(Math.max(...entry.users.values()));
  }

  get(source: CameraSource): CameraReader | undefined {
    return this.cameras.get(cameraKey(source))?.reader;
  }

  readers(): CameraReader[] {
    return [...this.cameras.values()].map((e) => e.reader);
  }

  /** ffmpeg children alive now. */
  processCount(): number {
    return this.readers().filter((r) => r instanceof RtspReader && r.processRunning).length;
  }

  /** Stops every reader; resolves when their ffmpeg children have exited. */
  async stopAll(): Promise<void> {
    const readers = [...this.cameras.values()].map((e) => e.reader);
    this.cameras.clear();
    await Promise.all([...readers.map((r) => r.stop()), ...this.stopping]);
  }

  private create(source: CameraSource, rate: number): CameraReader {
    const c = this.config;
    const base = { reconnectIntervalSec: c.reconnectIntervalSec, maxBackoffSec: c.maxBackoffSec, maxRetries: c.maxRetries, watchdogMs: c.watchdogMs, identicalFrameLimit: c.identicalFrameLimit };
    const log = this.logger.child({ camera: redactUrl(source.url) });
    if (source.kind === 'rtsp') return new RtspReader(source, { ...base, ffmpegPath: c.ffmpegPath, keyframeOnlyFps: c.keyframeOnlyFps, jpegQuality: c.jpegQuality, gated: c.idleSlowCamera, previewWidth: c.framePreviewWidth }, log, rate);
    return new SnapshotReader(source, { ...base, timeoutMs: c.snapshotTimeoutMs, maxBytes: c.snapshotMaxBytes }, log, rate);
  }
}
