/**
 * Is a camera's port accepting connections again? While a camera that refused connections
 * waits out a long backoff, the reader knocks with a bare TCP connect at the base interval
 * (a SYN, nothing spawned, nothing requested) and reconnects as soon as one is accepted.
 * A camera that accepts the connection but fails later is not probed: it keeps backing off.
 */
import { connect } from 'node:net';

const DEFAULT_PORTS: Record<string, number> = { 'rtsp:': 554, 'rtsps:': 322, 'http:': 80, 'https:': 443 };

/** Host and port a camera URL connects to; undefined when the URL cannot say. Pure. */
export function probeTarget(url: string): { host: string; port: number } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[parsed.protocol];
  if (!port || !parsed.hostname) return undefined;
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
}

/** Whether a TCP connection to host:port is accepted within timeoutMs; the socket is closed at once. */
export function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
