/**
 * Process-level crash handling for both services. Something that escapes every handler
 * (an uncaught exception, an unhandled rejection) leaves the process in an unknown state:
 * it is logged once with its stack and the process exits non-zero so the supervisor
 * (Kubernetes, `npm start`) starts a clean one instead of letting this one limp on.
 */
import type { Logger } from 'pino';

export interface CrashHandlerOptions {
  /** Longest wait for the logger to flush (a pino-pretty transport runs in a worker thread). */
  flushTimeoutMs?: number;
  /** Exit status after a crash. */
  exitCode?: number;
  /** Seams for the unit test; the services use the real process. */
  target?: Pick<NodeJS.Process, 'on' | 'off'>;
  exit?: (code: number) => void;
}

/** What was thrown, as an Error the pino `err` serializer can show (with a stack). */
export function asError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  let text: string;
  try {
    text = typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = Object.prototype.toString.call(thrown);
  }
  return new Error(`non-Error value thrown: ${text.slice(0, 1000)}`);
}

/**
 * Installs uncaughtException / unhandledRejection handlers that log at fatal level and
 * exit. Returns a function that removes them (tests).
 */
export function installCrashHandlers(logger: Logger, options: CrashHandlerOptions = {}): () => void {
  const target = options.target ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const exitCode = options.exitCode ?? 1;
  const flushTimeoutMs = options.flushTimeoutMs ?? 2000;
  let crashing = false;

  const crash = (kind: 'uncaughtException' | 'unhandledRejection', thrown: unknown): void => {
    if (crashing) return; // a second failure while logging the first: the first one decides
    crashing = true;
    // Should anything below fail or hang, the process still ends with a failure status.
    process.exitCode = exitCode;
    let exited = false;
    // Not unref'd: this timer is what guarantees the exit when a flush never calls back.
    const deadline = setTimeout(() => done(), flushTimeoutMs);
    const done = (): void => {
      if (exited) return;
      exited = true;
      clearTimeout(deadline);
      exit(exitCode);
    };
    try {
      logger.fatal({ err: asError(thrown), kind }, kind === 'uncaughtException' ? 'uncaught exception; exiting' : 'unhandled promise rejection; exiting');
      logger.flush((err) => {
        if (err) process.stderr.write(`log flush failed: ${String(err)}\n`);
        done();
      });
    } catch (err) {
      process.stderr.write(`${kind} (logging failed: ${String(err)}): ${asError(thrown).stack ?? ''}\n`);
      done();
    }
  };
  const onException = (err: unknown): void => crash('uncaughtException', err);
  const onRejection = (reason: unknown): void => crash('unhandledRejection', reason);
  target.on('uncaughtException', onException);
  target.on('unhandledRejection', onRejection);
  return () => {
    target.off('uncaughtException', onException);
    target.off('unhandledRejection', onRejection);
  };
}
