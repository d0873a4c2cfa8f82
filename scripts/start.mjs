// `npm start`: runs infer and relay together on this machine, as two processes (the way
// they are deployed), with readable logs when a person is watching. Ctrl-C / SIGTERM stops both.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
if (env.LOG_PRETTY === undefined && process.stdout.isTTY) env.LOG_PRETTY = '1';
const inferPort = env.INFER_PORT ?? '8080';
env.INFER_URL ??= `http://127.0.0.1:${inferPort}`;

const services = [
  { name: 'infer', entry: 'services/infer/dist/main.js' },
  { name: 'relay', entry: 'services/relay/dist/main.js' },
].filter((s) => existsSync(join(root, s.entry)));

const children = services.map((s) => {
  const child = spawn(process.execPath, [join(root, s.entry)], { env, stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${s.name} exited (${signal ?? code}); stopping the others`);
      stop(code ?? 1);
    }
  });
  return child;
});

let stopping = false;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r))))).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
console.log(`started ${services.map((s) => s.name).join(' + ')}: infer on :${inferPort}${services.some((s) => s.name === 'relay') ? `, relay on :${env.RELAY_PORT ?? '8000'}` : ''}`);
