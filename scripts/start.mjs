// `npm start`: runs infer and relay together on this machine, as two processes (the way
// they are deployed), with readable logs when a person is watching. A service that crashes
// is restarted with backoff (as Kubernetes would) while the other keeps running.
// Ctrl-C / SIGTERM stops both, and nothing is restarted after that.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
if (env.LOG_PRETTY === undefined && process.stdout.isTTY) env.LOG_PRETTY = '1';
const inferPort = env.INFER_PORT ?? '8080';
env.INFER_URL ??= `http://127.0.0.1:${inferPort}`;

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
/** A run this long counts as healthy: the next crash starts the backoff again from 1 s. */
const HEALTHY_MS = 60_000;

const log = (msg) => console.log(`[start] ${msg}`);

const services = [
  { name: 'infer', entry: 'services/infer/dist/main.js' },
  { name: 'relay', entry: 'services/relay/dist/main.js' },
]
  .filter((s) => existsSync(join(root, s.entry)))
  .map((s) => ({ ...s, child: undefined, startedAt: 0, delayMs: FIRST_DELAY_MS, restarts: 0, timer: undefined }));

let stopping = false;

function launch(s) {
  s.startedAt = Date.now();
  const child = spawn(process.execPath, [join(root, s.entry)], { env, stdio: 'inherit' });
  s.child = child;
  log(`${s.name} started (pid ${child.pid})`);
  child.on('error', (err) => log(`${s.name} could not be spawned: ${err.message}`));
  child.on('exit', (code, signal) => {
    s.child = undefined;
    if (stopping) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (code === 0) {
      // Only a requested shutdown exits 0: whoever asked for it did not want it back.
      log(`${s.name} exited cleanly (${how}); not restarting`);
      return;
    }
    if (Date.now() - s.startedAt >= HEALTHY_MS) s.delayMs = FIRST_DELAY_MS;
    const delay = s.delayMs;
    s.delayMs = Math.min(MAX_DELAY_MS, s.delayMs * 2);
    s.restarts++;
    log(`${s.name} crashed (${how}); restarting in ${delay / 1000} s (restart ${s.restarts})`);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (!stopping) launch(s);
    }, delay);
  });
}

function stop(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping ${services.map((s) => s.name).join(' + ')}`);
  for (const s of services) clearTimeout(s.timer);
  const running = services.map((s) => s.child).filter((c) => c && c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill('SIGTERM');
  Promise.all(running.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r))))).then(() => process.exit(0));
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

for (const s of services) launch(s);
log(`running ${services.map((s) => s.name).join(' + ')}: infer on :${inferPort}${services.some((s) => s.name === 'relay') ? `, relay on :${env.RELAY_PORT ?? '8000'}` : ''}`);
