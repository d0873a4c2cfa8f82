/**
 * Crashes end in a fatal log line and a non-zero exit (never a limping process), and
 * `npm start` (scripts/start.mjs) restarts a crashed service while the other keeps running;
 * SIGTERM stops everything without restarts. Real processes on loopback, bounded in time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { freePort } from '@detector-worker/testkit/servers';

const crashEntry = join(repoRoot, 'test', 'dist', 'support', 'crash-entry.js');
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '');

/** Runs a child to its end (killed after `timeoutMs`), collecting stdout and stderr together. */
function runToEnd(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => child.on('close', (code, signal) => (clearTimeout(timer), resolve({ code, signal, out }))));
}

test('an uncaught exception is logged at fatal with its stack (JSON logs) and exits 1', async () => {
  const { code, signal, out } = await runToEnd([crashEntry, 'throw'], { LOG_PRETTY: '0' });
  assert.equal(signal, null, out);
  assert.equal(code, 1, out);
  const fatal = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.level === 60);
  assert.ok(fatal, out);
  assert.equal(fatal.kind, 'uncaughtException');
  assert.equal(fatal.err.type, 'TypeError');
  assert.match(fatal.err.stack, /deliberate crash for the test\n\s+at /);
});

test('an unhandled rejection is logged through the pino-pretty transport before the exit', async () => {
  const { code, out } = await runToEnd([crashEntry, 'reject'], { LOG_PRETTY: '1' });
  assert.equal(code, 1, out);
  const text = stripAnsi(out);
  assert.match(text, /FATAL.*unhandled promise rejection; exiting/);
  assert.match(text, /deliberate rejection for the test\n\s+at /, 'the stack made it out of the transport worker');
});

test('a thrown non-Error is logged with a readable message', async () => {
  const { code, out } = await runToEnd([crashEntry, 'throw-string'], { LOG_PRETTY: '0' });
  assert.equal(code, 1, out);
  assert.match(out, /"level":60.*non-Error value thrown: a bare string/);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, out: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output:\n${out().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await request(`http://127.0.0.1:${port}/healthz`, { headersTimeout: 1000, bodyTimeout: 1000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

test('npm start restarts a killed service with backoff, keeps the other up, and SIGTERM stops both', async () => {
  const [inferPort, relayPort] = [await freePort(), await freePort()];
  const cache = await mkdtemp(join(tmpdir(), 'crash-restart-'));
  const env = {
    ...process.env,
    LOG_PRETTY: '0',
    LOG_LEVEL: 'warn',
    INFER_HOST: '127.0.0.1',
    INFER_PORT: String(inferPort),
    RELAY_HOST: '127.0.0.1',
    RELAY_PORT: String(relayPort),
    INFER_WORKERS: '1',
    MODEL_CACHE_DIR: cache,
  };
  delete (env as Record<string, unknown>).INFER_URL;
  const start: ChildProcess = spawn(process.execPath, [join(repoRoot, 'scripts', 'start.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  start.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  start.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => start.on('exit', (code) => r(code)));
  const pids = (name: string) => [...out.matchAll(new RegExp(`\\[start\\] ${name} started \\(pid (\\d+)\\)`, 'g'))].map((m) => Number(m[1]));
  const seen = new Set<number>();
  try {
    await until('both services healthy', async () => (await healthy(inferPort)) && (await healthy(relayPort)), 30_000, () => out);
    const [inferPid] = pids('infer');
    const [relayPid] = pids('relay');
    assert.ok(inferPid && relayPid, out);
    seen.add(inferPid).add(relayPid);

    process.kill(relayPid, 'SIGKILL');
    await until('the restart log line', () => /\[start\] relay crashed \(signal SIGKILL\); restarting in 1 s \(restart 1\)/.test(out), 10_000, () => out);
    const newRelay = await until('a new relay pid', () => pids('relay')[1], 10_000, () => out);
    seen.add(newRelay);
    assert.notEqual(newRelay, relayPid);
    await until('the relay port answering again', () => healthy(relayPort), 20_000, () => out);
    assert.ok(alive(inferPid), 'infer kept running');
    assert.deepEqual(pids('infer'), [inferPid], 'infer was not restarted');
    assert.ok(await healthy(inferPort));

    // A second crash soon after waits twice as long.
    process.kill(newRelay, 'SIGKILL');
    await until('the second restart line', () => /relay crashed \(signal SIGKILL\); restarting in 2 s \(restart 2\)/.test(out), 10_000, () => out);
    const third = await until('a third relay pid', () => pids('relay')[2], 10_000, () => out);
    seen.add(third);
    await until('the relay port answering again', () => healthy(relayPort), 20_000, () => out);

    start.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, out);
    assert.doesNotMatch(out.slice(out.indexOf('SIGTERM: stopping')), /restarting in/, 'no restart on a requested shutdown');
    await until('every service process gone', () => [...seen].every((pid) => !alive(pid)), 5000, () => out);
  } finally {
    if (start.exitCode === null && start.signalCode === null) start.kill('SIGKILL');
    for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(cache, { recursive: true, force: true });
  }
});
