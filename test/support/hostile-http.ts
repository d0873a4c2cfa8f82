/**
 * Misbehaving HTTP servers and clients on loopback, built on node:net so that they can break
 * the protocol in ways node:http would not allow: bodies cut short or reset, endless redirects,
 * compression bombs, megabyte headers, bytes dripped one at a time, and clients that dribble
 * their request. Every server tracks its sockets and destroys them on close().
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** Writes whatever it likes to the socket; the kit destroys the socket on close() if it is left open. */
export type RawRoute = (socket: Socket, request: RawRequest) => void;

export interface LoopbackServer {
  port: number;
  base: string;
  /** Requests seen per path (to count downloads). */
  hits: Map<string, number>;
  close(): Promise<void>;
}

const MAX_REQUEST_HEAD = 64 * 1024;

function trackSockets(server: Server | HttpServer): () => void {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return () => {
    for (const s of sockets) s.destroy();
  };
}

function listen(server: Server | HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function parseHead(head: string): RawRequest {
  const [requestLine = '', ...lines] = head.split('\r\n');
  const [method = '', path = ''] = requestLine.split(' ');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return { method, path, headers };
}

/** A server that reads one request head per connection and hands the socket to its route. */
export async function startRawServer(routes: Record<string, RawRoute>): Promise<LoopbackServer> {
  const hits = new Map<string, number>();
  const server = createServer((socket) => {
    let head = Buffer.alloc(0);
    socket.on('error', () => undefined);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_REQUEST_HEAD) socket.destroy();
        return;
      }
      socket.off('data', onData);
      const request = parseHead(head.subarray(0, end).toString('latin1'));
      hits.set(request.path, (hits.get(request.path) ?? 0) + 1);
      const route = routes[request.path];
      if (route) route(socket, request);
      else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    };
    socket.on('data', onData);
  });
  const destroyAll = trackSockets(server);
  const port = await listen(server);
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    hits,
    close: async () => {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A well-behaved keep-alive server (node:http) serving fixed bodies by path. */
export async function startFileServer(files: Record<string, Buffer>): Promise<LoopbackServer> {
  const hits = new Map<string, number>();
  const server = createHttpServer((req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const body = files[path];
    if (!body) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(body.length) });
    res.end(body);
  });
  const destroyAll = trackSockets(server);
  const port = await listen(server);
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    hits,
    close: async () => {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------
// Misbehaving answers (routes for startRawServer)

/** python -m http.server style: HTTP/1.0, no Content-Length, the end of the body is the close. */
export function closeDelimited(body: Buffer): RawRoute {
  return (socket) => {
    socket.write('HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Type: application/octet-stream\r\n\r\n');
    socket.end(body);
  };
}

/** HTTP/1.1 with a correct Content-Length and `Connection: close`, closed right after the body. */
export function connectionClose(body: Buffer): RawRoute {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.end(body);
  };
}

/** Sends part of the body, then a TCP RST. */
export function resetMidBody(body: Buffer): RawRoute {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => socket.resetAndDestroy(), 20));
  };
}

/** Declares more bytes than it sends, then closes cleanly. */
export function shortBody(body: Buffer, missing = 1000): RawRoute {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: ${body.length + missing}\r\n\r\n`);
    socket.end(body);
  };
}

export function redirect(location: string, status = 302): RawRoute {
  return (socket) => socket.end(`HTTP/1.1 ${status} Redirect\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

export function statusOnly(status: number, text = 'boom'): RawRoute {
  return (socket) => socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
}

/**
 * A multi-member gzip stream that inflates to `inflatedBytes` of zeros while only about a
 * thousandth of that travels: one small member, repeated.
 */
export function gzipBombBody(inflatedBytes = 2 * 1024 ** 3): Buffer {
  const memberSize = 16 * 1024 * 1024;
  const member = gzipSync(Buffer.alloc(memberSize), { level: 9 });
  return Buffer.concat(Array.from({ length: Math.ceil(inflatedBytes / memberSize) }, () => member));
}

export function gzipBomb(body: Buffer): RawRoute {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.end(body);
  };
}

/** A response header of `bytes` bytes (never finished if the client gives up first). */
export function hugeHeader(bytes = 1024 * 1024): RawRoute {
  return (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nX-Filler: ');
    socket.write(Buffer.alloc(bytes, 'a'));
    socket.end('\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  };
}

/** Sends the body one byte per interval: always some progress, never done in time. */
export function drip(body: Buffer, intervalMs = 1000): RawRoute {
  return (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: ${body.length}\r\n\r\n`);
    let at = 0;
    const timer = setInterval(() => {
      if (at >= body.length || socket.destroyed) {
        clearInterval(timer);
        if (!socket.destroyed) socket.end();
        return;
      }
      socket.write(body.subarray(at, ++at));
    }, intervalMs);
    socket.once('close', () => clearInterval(timer));
  };
}

/** Waits, then hands over to another route (a slow but honest server). */
export function delayed(ms: number, route: RawRoute): RawRoute {
  return (socket, request) => {
    const timer = setTimeout(() => route(socket, request), ms);
    socket.once('close', () => clearTimeout(timer));
  };
}

// ---------------------------------------------------------------------------------------
// Misbehaving clients

export interface RawClient {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Bytes this client has written. */
  sent(): number;
  write(data: string | Buffer): Promise<void>;
  /** Resolves with what arrived once the server closes the connection (or `ms` passes: then rejects). */
  closed(ms: number): Promise<string>;
  /** Resolves once the server's answer contains `text`, or rejects after `ms`. */
  waitFor(text: string, ms: number): Promise<string>;
  destroy(): void;
}

export async function rawClient(port: number): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let data = '';
  let sent = 0;
  let ended = false;
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('error', () => undefined);
  const ends = new Promise<void>((resolve) => socket.once('close', () => ((ended = true), resolve())));
  const until = <T>(what: Promise<T>, ms: number, label: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${label} not within ${ms} ms; got ${JSON.stringify(data.slice(0, 300))}`)), ms)));
    return Promise.race([what, limit]).finally(() => clearTimeout(timer));
  };
  return {
    socket,
    received: () => data,
    sent: () => sent,
    write: (chunk) =>
      new Promise<void>((resolve) => {
        if (ended || socket.destroyed || !socket.writable) return resolve();
        sent += Buffer.byteLength(chunk);
        socket.write(chunk, () => resolve());
      }),
    closed: (ms) => until(ends.then(() => data), ms, 'connection close'),
    waitFor: (text, ms) =>
      until(
        new Promise<string>((resolve) => {
          const check = (): void => {
            if (data.includes(text)) {
              socket.off('data', check);
              resolve(data);
            }
          };
          socket.on('data', check);
          check();
        }),
        ms,
        `answer containing ${JSON.stringify(text)}`,
      ),
    destroy: () => socket.destroy(),
  };
}

/** Status code and JSON body of a raw HTTP answer. */
export function parseRawAnswer(raw: string): { status: number; headers: Record<string, string>; body: unknown } {
  const end = raw.indexOf('\r\n\r\n');
  const head = parseHead(raw.slice(0, end < 0 ? raw.length : end));
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
  const text = end < 0 ? '' : raw.slice(end + 4);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (or not complete): keep the text
  }
  return { status, headers: head.headers, body };
}
