import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * One logger factory for both services. JSON lines by default (what log shippers want);
 * pino-pretty when a person is watching a terminal. Secrets never reach the log: the
 * redact paths cover the places where credentials can appear.
 */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = process.env.LOG_PRETTY === '1' || (process.env.LOG_PRETTY !== '0' && process.stdout.isTTY === true);
  return pino({
    name,
    level,
    redact: {
      paths: ['password', '*.password', '*.*.password', 'req.headers.authorization', 'headers.authorization', 'token', '*.token'],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } } : {}),
    ...options,
  });
}

/** Removes user:password from a URL before it is logged or shown in an API answer. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = u.password ? '***' : '';
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}
