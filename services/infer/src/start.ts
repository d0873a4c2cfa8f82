/** Builds and starts the infer service (used by main.ts and by in-process tests). */
import type { Logger } from '@detector-worker/shared/logging';
import type { InferConfig } from './config.js';
import { buildInferServer } from './http/server.js';
import { InferService } from './service.js';
import type { ActionRunner } from './pipeline/ports.js';

export interface RunningInfer {
  service: InferService;
  url: string;
  port: number;
  /** Graceful: stop being ready, let in-flight requests finish (up to the deadline), close everything. */
  close(deadlineMs?: number): Promise<void>;
}

export async function startInfer(config: InferConfig, logger: Logger, deps: { actions?: ActionRunner } = {}): Promise<RunningInfer> {
  const service = new InferService(config, logger, deps);
  const app = await buildInferServer({
    service,
    token: config.token,
    bodyLimit: config.maxBodyBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
  });
  await service.start();
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  logger.info({ port, workers: config.workers, intraOpThreads: config.intraOpThreads }, 'infer listening');
  return {
    service,
    url: `http://${host}:${port}`,
    port,
    close: async (deadlineMs = config.shutdownTimeoutMs) => {
      service.drain();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), deadlineMs)));
      const closed = await Promise.race([app.close().then(() => 'closed' as const), deadline]);
      clearTimeout(timer);
      if (closed === 'deadline') {
        logger.warn({ deadlineMs, inFlight: service.inFlight }, 'shutdown deadline reached; dropping in-flight requests');
        app.server.closeAllConnections();
      }
      await service.close();
    },
  };
}
