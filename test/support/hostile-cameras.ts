/**
 * HTTP snapshot cameras that misbehave on request, for tests: each serves a valid JPEG until
 * told to switch to a hostile mode, and counts its open sockets (now and at most) so a test
 * can see that the relay does not pile connections up. Loopback only.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export type CameraMode =
  /** A valid JPEG, keep-alive. */
  | 'good'
  /** A valid JPEG, then the connection is closed (`Connection: close`). */
  | 'close'
  /** The JPEG one byte a second, with a true Content-Length. */
  | 'drip'
  /** 64 KiB of random bytes. */
  | 'random'
  /** 50 MB: FF D8, then random bytes, chunked (no Content-Length), as fast as it is read. */
  | 'huge'
  /** Headers announce 50 MB. */
  | 'huge-declared'
  /** Accepts the connection and the request, never answers. */
  | 'silent'
  /** FF D8, then garbage, then FF D9: looks like a JPEG to a two-byte check. */
  | 'fake-jpeg';

export interface HostileCamera {
  url: string;
  mode: CameraMode;
  requests: number;
  openSockets(): number;
  maxOpenSockets: number;
  /** Bytes written to clients in total. */
  bytesSent: number;
  close(): Promise<void>;
}

const HUGE = 50 * 1024 * 1024;

export async function startHostileCamera(jpeg: Buffer, mode: CameraMode = 'good'): Promise<HostileCamera> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const camera: HostileCamera = {
    url: '',
    mode,
    requests: 0,
    openSockets: () => sockets.size,
    maxOpenSockets: 0,
    bytesSent: 0,
    close: async () => undefined,
  };
  const write = (res: ServerResponse, chunk: Buffer): boolean => {
    camera.bytesSent += chunk.length;
    return res.write(chunk);
  };
  const server: Server = createServer((req, res) => {
    camera.requests++;
    req.resume();
    switch (camera.mode) {
      case 'good':
        camera.bytesSent += jpeg.length;
        return void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length }).end(jpeg);
      case 'close':
        camera.bytesSent += jpeg.length;
        return void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length, connection: 'close' }).end(jpeg);
      case 'drip': {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length });
        write(res, jpeg.subarray(0, 1));
        let i = 1;
        const tick = setInterval(() => {
          if (res.destroyed || i >= jpeg.length) {
            clearInterval(tick);
            timers.delete(tick);
            return;
          }
          write(res, jpeg.subarray(i, i + 1));
          i++;
        }, 1000);
        timers.add(tick);
        res.on('close', () => {
          clearInterval(tick);
          timers.delete(tick);
        });
        return;
      }
      case 'random': {
        const body = randomBytes(64 * 1024);
        camera.bytesSent += body.length;
        return void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
      }
      case 'huge': {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const block = randomBytes(64 * 1024);
        block[0] = 0xff;
        block[1] = 0xd8;
        let sent = 0;
        const pump = (): void => {
          while (!res.destroyed && sent < HUGE) {
            sent += block.length;
            if (!write(res, block)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        return pump();
      }
      case 'huge-declared':
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': HUGE });
        return void write(res, jpeg);
      case 'silent':
        return;
      case 'fake-jpeg': {
        const body = randomBytes(20 * 1024);
        body[0] = 0xff;
        body[1] = 0xd8;
        body[2] = 0x00;
        body[body.length - 2] = 0xff;
        body[body.length - 1] = 0xd9;
        camera.bytesSent += body.length;
        return void res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
      }
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    camera.maxOpenSockets = Math.max(camera.maxOpenSockets, sockets.size);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  camera.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/snapshot.jpg`;
  camera.close = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return camera;
}
