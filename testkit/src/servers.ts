/**
 * Real Redis and PostgreSQL servers for tests.
 *
 * `redisForTests()` / `postgresForTests()` find a server in this order: the URL in
 * REDIS_URL / DATABASE_URL, then the machine's shared server on its default loopback port
 * when something answers there, then a throwaway server started from the installed binaries
 * in a temp dir on a free port. Without any of these they throw an error that says what to
 * install.
 *
 * `startThrowawayRedis()` / `startThrowawayPostgres()` always start a private server, which
 * outage tests may `pause()` and `resume()` on the same port. Nothing here ever stops a
 * server it did not start.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CodedError } from '@detector-worker/shared/errors';

/** The one code of test support (a catalogue of its own: it is no service's). */
const testError = CodedError.factory({
  TEST_SERVER_UNAVAILABLE: { status: 500, message: 'a test server is unavailable', description: 'Redis / PostgreSQL for tests could not be started or reached', surface: 'test' },
});

export interface RedisServerConfig {
  host: string;
  port: number;
  db: number;
  password?: string;
}

export interface PostgresServerConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
}

export type ServerOrigin = 'env' | 'shared' | 'throwaway';

export interface TestServer<C> {
  url: string;
  config: C;
  /** Where the server came from; only a throwaway one is ever stopped. */
  origin: ServerOrigin;
  /** Stops and deletes a throwaway server; a no-op for an env or shared one. */
  stop(): Promise<void>;
}

export interface ThrowawayServer<C> extends TestServer<C> {
  origin: 'throwaway';
  /** Stops the server process but keeps its data dir and port (an outage). */
  pause(): Promise<void>;
  /** Starts it again on the same port. */
  resume(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';
const SHARED_REDIS_PORT = 6379;
const SHARED_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

function unavailable(message: string): CodedError {
  return testError('TEST_SERVER_UNAVAILABLE', message);
}

// ---------------------------------------------------------------------------------------
// URLs and probing

export function parseRedisUrl(url: string): RedisServerConfig {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw unavailable(`REDIS_URL must start with redis:// (got ${u.protocol})`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || LOOPBACK,
    port: u.port ? Number(u.port) : SHARED_REDIS_PORT,
    db: Number.isInteger(db) ? db : 0,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

export function parsePostgresUrl(url: string): PostgresServerConfig {
  const u = new URL(url);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw unavailable(`DATABASE_URL must start with postgres:// (got ${u.protocol})`);
  return {
    host: u.hostname || LOOPBACK,
    port: u.port ? Number(u.port) : 5432,
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    user: decodeURIComponent(u.username) || 'postgres',
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

function redisUrl(c: RedisServerConfig): string {
  return `redis://${c.password ? `:${encodeURIComponent(c.password)}@` : ''}${c.host}:${c.port}/${c.db}`;
}

function postgresUrl(c: PostgresServerConfig): string {
  const auth = encodeURIComponent(c.user) + (c.password ? `:${encodeURIComponent(c.password)}` : '');
  return `postgres://${auth}@${c.host}:${c.port}/${encodeURIComponent(c.database)}`;
}

/** Resolves true when a TCP connection opens (and, with `hello`, something is written back). */
export function answers(host: string, port: number, hello?: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      if (hello === undefined) return done(true);
      socket.write(hello);
      socket.once('data', () => done(true));
    });
  });
}

/** A port the OS just handed out on loopback (free at that moment). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, failed?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const why = failed?.();
    if (why) throw unavailable(`${what}: ${why}`);
    if (await check()) return;
    if (Date.now() > deadline) throw unavailable(`${what}: not answering after ${timeoutMs} ms`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------
// Binaries

function findBinary(name: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Debian/Ubuntu keep the server binaries in /usr/lib/postgresql/<version>/bin, off PATH. */
function postgresBinDirs(): string[] {
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  } catch {
    /* not Debian-style */
  }
  return [...versions.map((v) => join(base, v, 'bin')), '/usr/local/pgsql/bin'];
}

function run(file: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(unavailable(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr || stdout}`.trim()));
      else resolve({ stdout, stderr });
    });
  });
}

/** Processes started here are killed if the test process exits without stopping them. */
const cleanups = new Set<() => void>();
let exitHookInstalled = false;
function onExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const f of cleanups) {
        try {
          f();
        } catch {
          /* best effort at exit */
        }
      }
    });
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

// ---------------------------------------------------------------------------------------
// Redis

export async function startThrowawayRedis(): Promise<ThrowawayServer<RedisServerConfig>> {
  const bin = findBinary('redis-server');
  if (!bin) throw unavailable('redis-server not found: install Redis (e.g. `apt-get install redis-server`) or set REDIS_URL');
  const dir = mkdtempSync(join(tmpdir(), 'dw-redis-'));
  const port = await freePort();
  const config: RedisServerConfig = { host: LOOPBACK, port, db: 0 };
  let child: ChildProcess | undefined;
  let output = '';
  let exited: string | undefined;

  const start = async () => {
    output = '';
    exited = undefined;
    const args = ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', '--daemonize', 'no'];
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const collect = (b: Buffer) => {
      if (output.length < 8192) output += b.toString();
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    proc.once('exit', (code, signal) => {
      exited = `redis-server exited (${signal ?? code}): ${output.slice(-2000)}`;
    });
    await waitUntil(() => answers(LOOPBACK, port, 'PING\r\n'), 10_000, `throwaway redis-server on port ${port}`, () => exited);
  };

  const halt = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  };

  const forget = onExit(() => child?.kill('SIGKILL'));
  try {
    await start();
  } catch (err) {
    await halt();
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: redisUrl(config),
    config,
    origin: 'throwaway',
    pause: halt,
    resume: start,
    async stop() {
      await halt();
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function redisForTests(): Promise<TestServer<RedisServerConfig>> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    const config = parseRedisUrl(fromEnv);
    return { url: fromEnv, config, origin: 'env', stop: async () => {} };
  }
  if (await answers(LOOPBACK, SHARED_REDIS_PORT, 'PING\r\n')) {
    const config: RedisServerConfig = { host: LOOPBACK, port: SHARED_REDIS_PORT, db: 0 };
    return { url: redisUrl(config), config, origin: 'shared', stop: async () => {} };
  }
  return startThrowawayRedis();
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/**
 * initdb and postgres refuse to run as root. As root, run them as an unprivileged account
 * (`postgres` when it exists, else `nobody`) via runuser, or su when runuser is missing.
 */
interface RunAs {
  user: string;
  uid: number;
  gid: number;
}

function unprivilegedUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { user, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw unavailable('running as root and no `postgres` or `nobody` account to run initdb as: create a non-root user or set DATABASE_URL');
}

function asUser(runAs: RunAs | undefined, file: string, args: string[]): [string, string[]] {
  if (!runAs) return [file, args];
  const runuser = findBinary('runuser', ['/usr/sbin', '/sbin']);
  if (runuser) return [runuser, ['-u', runAs.user, '--', file, ...args]];
  const quoted = [file, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return ['su', [runAs.user, '-s', '/bin/sh', '-c', quoted]];
}

export async function startThrowawayPostgres(): Promise<ThrowawayServer<PostgresServerConfig>> {
  const extra = postgresBinDirs();
  const initdb = findBinary('initdb', extra);
  const pgCtl = findBinary('pg_ctl', extra);
  if (!initdb || !pgCtl) throw unavailable('initdb/pg_ctl not found: install the PostgreSQL server (e.g. `apt-get install postgresql`) or set DATABASE_URL');
  const runAs = unprivilegedUser();
  const dir = mkdtempSync(join(tmpdir(), 'dw-pg-'));
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const port = await freePort();
  const config: PostgresServerConfig = { host: LOOPBACK, port, database: 'postgres', user: 'postgres' };
  let running = false;

  const ctl = (args: string[], timeoutMs = 60_000) => {
    const [file, argv] = asUser(runAs, pgCtl, args);
    return run(file, argv, timeoutMs);
  };
  const start = async () => {
    // Socket in the private dir; fsync off: this data is thrown away.
    const opts = `-p ${port} -c listen_addresses=${LOOPBACK} -k ${dir} -F -c max_connections=40 -c shared_buffers=16MB`;
    await ctl(['-D', data, '-l', log, '-w', '-t', '30', '-o', opts, 'start']);
    running = true;
    await waitUntil(() => answers(LOOPBACK, port), 10_000, `throwaway postgres on port ${port}`);
  };
  const halt = async () => {
    if (!running) return;
    running = false;
    await ctl(['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  const forget = onExit(() => {
    if (!running) return;
    const [file, argv] = asUser(runAs, pgCtl, ['-D', data, '-m', 'immediate', 'stop']);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 10_000 });
  });

  try {
    const [file, argv] = asUser(runAs, initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    await run(file, argv);
    await start();
  } catch (err) {
    await halt().catch(() => {});
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: postgresUrl(config),
    config,
    origin: 'throwaway',
    pause: halt,
    resume: start,
    async stop() {
      await halt().catch(() => {});
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function postgresForTests(): Promise<TestServer<PostgresServerConfig>> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) return { url: fromEnv, config: parsePostgresUrl(fromEnv), origin: 'env', stop: async () => {} };
  const shared = parsePostgresUrl(SHARED_PG_URL);
  if (await answers(shared.host, shared.port)) return { url: SHARED_PG_URL, config: shared, origin: 'shared', stop: async () => {} };
  return startThrowawayPostgres();
}
