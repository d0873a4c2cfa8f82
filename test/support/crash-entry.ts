/**
 * A tiny process for test/crash-restart.test.ts: installs the services' crash handler the way
 * their main.ts does, then fails in the way argv[2] names ("throw", "reject", "throw-string").
 */
import { createLogger } from '@detector-worker/shared/logging';
import { installCrashHandlers } from '@detector-worker/shared/process';

const logger = createLogger('crash-test');
installCrashHandlers(logger);
logger.info('crash entry running');
// Something to keep the loop busy, as a real service would.
setInterval(() => {}, 1000);

const how = process.argv[2];
setTimeout(() => {
  if (how === 'throw') throw new TypeError('deliberate crash for the test');
  if (how === 'reject') void Promise.reject(new Error('deliberate rejection for the test'));
  if (how === 'throw-string') throw 'a bare string'; // eslint-disable-line no-throw-literal
}, 50);
