/** Starts the relay: `node services/relay/dist/main.js`. */
import { createLogger } from '@detector-worker/shared/logging';
import { errorMessage } from '@detector-worker/shared/errors';
import { installCrashHandlers } from '@detector-worker/shared/process';
import { loadRelayConfig, type RelayConfig } from './config.js';
import { startRelay } from './server.js';

const logger = createLogger('relay');
// First, so that nothing after this can fail without a fatal log line and a non-zero exit.
installCrashHandlers(logger);

let config: RelayConfig;
try {
  config = loadRelayConfig();
} catch (err) {
  logger.fatal({ reason: errorMessage(err) }, 'invalid configuration');
  process.exit(1);
}

// A failure to start (port taken) reaches the crash handler: fatal log, exit 1.
const relay = await startRelay(config, logger);
let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: closing CMS sockets, stopping cameras');
  const deadline = setTimeout(() => process.exit(0), config.shutdownTimeoutMs);
  deadline.unref();
  await relay.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
