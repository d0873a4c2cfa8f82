/**
 * A loopback HTTP snapshot camera replaying a rendered clip in real time:
 * GET /snapshot.jpg answers the JPEG of the frame for the time since start().
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';

/**
 * Frame index for `elapsedS` seconds of replay: floor(elapsed * fps), then either wrapped
 * (loop) or held at the last frame.
 */
export function frameIndexAt(elapsedS: number, fps: number, frameCount: number, loop: boolean): number {
  if (frameCount <= 0) throw new Error('clip without frames');
  const n = Math.max(0, Math.floor(elapsedS * fps + 1e-6));
  return loop ? n % frameCount : Math.min(n, frameCount - 1);
}

export interface SnapshotClip {
  frameCount: number;
  fps: number;
  framePath(n: number): string;
}

export interface SnapshotCameraOptions {
  /** Replay from the start after the last frame (default false: hold the last frame). */
  loop?: boolean;
  /** Milliseconds clock, replaceable for tests (default Date.now). */
  now?: () => number;
}

export interface SnapshotCamera {
  /** http://127.0.0.1:port/snapshot.jpg */
  url: string;
  /** Frame index the camera serves right now. */
  currentFrame(): number;
  /** Number of snapshots served. */
  served(): number;
  /** Restart the replay at frame 0. */
  restart(): void;
  close(): Promise<void>;
}

export async function startSnapshotCamera(clip: SnapshotClip, options: SnapshotCameraOptions = {}): Promise<SnapshotCamera> {
  const now = options.now ?? Date.now;
  const loop = options.loop ?? false;
  let startedAt = now();
  let served = 0;
  const currentFrame = () => frameIndexAt((now() - startedAt) / 1000, clip.fps, clip.frameCount, loop);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/snapshot.jpg') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const n = currentFrame();
    readFile(clip.framePath(n)).then(
      (jpeg) => {
        served++;
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length, 'cache-control': 'no-store', 'x-frame-index': String(n) }).end(jpeg);
      },
      (err: Error) => { res.writeHead(500, { 'content-type': 'text/plain' }).end(`frame ${n}: ${err.message}`); },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/snapshot.jpg`,
    currentFrame,
    served: () => served,
    restart: () => { startedAt = now(); },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
