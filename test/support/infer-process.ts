/**
 * The real infer service as a child process (`node services/infer/dist/main.js`) on a free
 * loopback port, for tests that must prove the process itself survives (no in-process shortcut
 * can show an uncaught exception killing it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { freePort } from '@detector-worker/testkit/servers';

export interface InferProcess {
  url: string;
  port: number;
  child: ChildProcess;
  alive(): boolean;
  /** The last lines it logged (stdout and stderr), for assertion messages. */
  logs(): string;
  /** Peak resident set size so far (VmHWM), in KiB; undefined off Linux. */
  peakRssKb(): Promise<number | undefined>;
  stop(): Promise<void>;
}

const LOG_TAIL = 64 * 1024;

export async function startInferProcess(env: Record<string, string>, readyWithinMs = 30_000): Promise<InferProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'services/infer/dist/main.js')], {
    env: { ...process.env, INFER_HOST: '127.0.0.1', INFER_PORT: String(port), LOG_PRETTY: '0', LOG_LEVEL: 'warn', INFER_WORKERS: '1', ORT_INTRA_OP_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d: Buffer): void => {
    log = (log + d.toString()).slice(-LOG_TAIL);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const proc: InferProcess = {
    url,
    port,
    child,
    alive: () => child.exitCode === null && child.signalCode === null,
    logs: () => log,
    peakRssKb: async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb ? Number(kb) : undefined;
    },
    stop: async () => {
      if (!proc.alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + readyWithinMs;
  while (Date.now() < deadline) {
    if (!proc.alive()) throw new Error(`infer exited before it was ready:\n${log}`);
    const ready = await request(`${url}/readyz`).then(
      (r) => r.body.dump().then(() => r.statusCode === 200),
      () => false,
    );
    if (ready) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`infer was not ready within ${readyWithinMs} ms:\n${log}`);
}
