/** Starts the infer service: `node services/infer/dist/main.js`. */
import { createLogger } from '@detector-worker/shared/logging';
import { errorMessage } from '@detector-worker/shared/errors';
import { installCrashHandlers } from '@detector-worker/shared/process';
import { loadInferConfig } from './config.js';
import { startInfer } from './start.js';

const logger = createLogger('infer');
// First, so that nothing after this can fail without a fatal log line and a non-zero exit.
installCrashHandlers(logger);

let config;
try {
  config = loadInferConfig();
} catch (err) {
  logger.fatal({ reason: errorMessage(err) }, 'invalid configuration');
  process.exit(1);
}

// A failure to start (port taken, cache dir unwritable) reaches the crash handler: fatal log, exit 1.
const running = await startInfer(config, logger);
let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await running.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
