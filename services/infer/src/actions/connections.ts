/**
 * One Redis client / one PostgreSQL pool per distinct server, shared by every pipeline that
 * names it. Each connection owns the retry queue of its server. Clients are created on first
 * use, reconnect on their own, and never make a caller wait long: Redis commands fail at once
 * while disconnected (no offline queue) and time out; PostgreSQL connects and queries time out.
 * Passwords stay inside the client options: labels, logs and reasons never contain them.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { PostgresConfig, RedisConfig } from '@detector-worker/shared/pipeline/schema';
import { errorMessage } from '@detector-worker/shared/errors';
import type { Logger } from '@detector-worker/shared/logging';
import { RetryQueue, type RetryJob, type RetryPolicy } from './retry-queue.js';
import { COLUMNS_QUERY, createInitialTableStatements, type TableName } from './sql.js';

export interface ConnectionTimeouts {
  redisConnectTimeoutMs: number;
  redisCommandTimeoutMs: number;
  pgConnectTimeoutMs: number;
  pgQueryTimeoutMs: number;
  pgPoolSize: number;
}

export interface QueueHooks {
  onApplied(job: RetryJob): void;
  onDropped(job: RetryJob, reason: string): void;
}

/** A short digest, so different passwords on the same server get different connections. */
function secretTag(secret: string | undefined): string {
  return secret ? createHash('sha256').update(secret).digest('hex').slice(0, 12) : '-';
}

export function redisKeyOf(c: RedisConfig): string {
  return `redis|${c.host}|${c.port}|${c.db ?? 0}|${secretTag(c.password)}`;
}

export function postgresKeyOf(c: PostgresConfig): string {
  return `pg|${c.host}|${c.port}|${c.database}|${c.username}|${secretTag(c.password)}`;
}

/** Removes a password from a message, in case a driver ever echoes it. */
function scrubber(secret: string | undefined): (message: string) => string {
  if (!secret || secret.length < 3) return (m) => m;
  return (m) => m.split(secret).join('***');
}

abstract class ServerConnection {
  /** pipelineKeys using this server. */
  readonly users = new Set<string>();
  readonly queue: RetryQueue;
  protected readonly scrub: (message: string) => string;
  /** Set when the last user left while writes were still waiting. */
  closeWhenIdle = false;
  /** Overflow logging is throttled: drops since the last log line, and when that was. */
  overflowSinceLog = 0;
  lastOverflowLog = 0;
  disposed = false;

  constructor(
    readonly key: string,
    readonly label: string,
    secret: string | undefined,
    protected readonly logger: Logger,
    policy: RetryPolicy,
    hooks: QueueHooks,
    onIdle: () => void,
  ) {
    this.scrub = scrubber(secret);
    this.queue = new RetryQueue({
      ...policy,
      label,
      logger,
      retryable: (err) => this.retryable(err),
      describe: (err) => this.describe(err),
      onApplied: hooks.onApplied,
      onDropped: hooks.onDropped,
      onIdle,
    });
  }

  describe(err: unknown): string {
    return this.scrub(errorMessage(err)).slice(0, 500);
  }

  abstract retryable(err: unknown): boolean;
  abstract close(): Promise<void>;
}

/** Redis reply errors that mean "try again later"; every other reply error is final. */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOREPLICAS)\b/;

export class RedisConnection extends ServerConnection {
  private client: Redis | undefined;
  private firstAttempt: Promise<void> | undefined;
  private up = false;
  private closing = false;

  constructor(
    private readonly config: RedisConfig,
    private readonly timeouts: ConnectionTimeouts,
    logger: Logger,
    policy: RetryPolicy,
    hooks: QueueHooks,
    onIdle: () => void,
  ) {
    super(redisKeyOf(config), `redis://${config.host}:${config.port}/${config.db ?? 0}`, config.password, logger, policy, hooks, onIdle);
  }

  retryable(err: unknown): boolean {
    if (err instanceof Error && err.name === 'ReplyError') return TRANSIENT_REPLIES.test(err.message);
    return true;
  }

  /** The connected client; throws (retryable) while the server is unreachable. */
  async ready(): Promise<Redis> {
    const client = this.open();
    if (client.status !== 'ready') await this.firstAttempt;
    if (client.status !== 'ready') throw new Error(`redis ${this.label} is not connected (${client.status})`);
    return client;
  }

  get connected(): boolean {
    return this.client?.status === 'ready';
  }

  private open(): Redis {
    if (this.client) return this.client;
    const c = this.config;
    const client = new Redis({
      host: c.host,
      port: c.port,
      db: c.db ?? 0,
      ...(c.password ? { password: c.password } : {}),
      // Fail fast while disconnected; the retry queue, not the driver, holds writes.
      enableOfflineQueue: false,
      // A command in flight when the link drops fails at once; the retry queue resends it.
      maxRetriesPerRequest: 0,
      commandTimeout: this.timeouts.redisCommandTimeoutMs,
      connectTimeout: this.timeouts.redisConnectTimeoutMs,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      lazyConnect: false,
    });
    this.client = client;
    this.firstAttempt = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        client.off('ready', done);
        client.off('error', done);
        client.off('end', done);
        resolve();
      };
      const timer = setTimeout(done, this.timeouts.redisConnectTimeoutMs + 250);
      timer.unref();
      client.once('ready', done);
      client.once('error', done);
      client.once('end', done);
    });
    client.on('ready', () => {
      if (!this.up) this.logger.info({ server: this.label }, 'redis connected');
      this.up = true;
      this.queue.kick();
    });
    // ioredis emits an error per failed reconnect attempt; log the transition, not each attempt.
    client.on('error', (err: unknown) => {
      if (this.closing) return;
      if (this.up) this.logger.warn({ server: this.label, err: this.describe(err) }, 'redis connection lost; reconnecting');
      else this.logger.debug({ server: this.label, err: this.describe(err) }, 'redis not reachable');
      this.up = false;
    });
    client.on('close', () => {
      if (this.closing) return;
      if (this.up) this.logger.warn({ server: this.label }, 'redis connection closed; reconnecting');
      this.up = false;
    });
    return client;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    this.closing = true;
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  }
}

/** SQLSTATE classes/codes that mean the server (not the statement) is the problem. */
function transientSqlState(code: string): boolean {
  return code.startsWith('08') || code.startsWith('53') || ['57P01', '57P02', '57P03', '40001', '40P01', '55P03'].includes(code);
}

export class PostgresConnection extends ServerConnection {
  private pool: pg.Pool | undefined;
  /** Tables whose initial-record DDL ran on this server. */
  private readonly ensured = new Map<string, Promise<void>>();
  private readonly columns = new Map<string, Set<string>>();

  constructor(
    private readonly config: PostgresConfig,
    private readonly timeouts: ConnectionTimeouts,
    logger: Logger,
    policy: RetryPolicy,
    hooks: QueueHooks,
    onIdle: () => void,
  ) {
    super(postgresKeyOf(config), `postgres://${config.username}@${config.host}:${config.port}/${config.database}`, config.password, logger, policy, hooks, onIdle);
  }

  retryable(err: unknown): boolean {
    // A DatabaseError carries the server's SQLSTATE; anything else is the network or a timeout.
    if (err instanceof pg.DatabaseError) return typeof err.code === 'string' && transientSqlState(err.code);
    return !(err instanceof Error && err.name === 'CodedError');
  }

  private open(): pg.Pool {
    if (this.pool) return this.pool;
    const c = this.config;
    const pool = new pg.Pool({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.username,
      password: c.password,
      max: this.timeouts.pgPoolSize,
      connectionTimeoutMillis: this.timeouts.pgConnectTimeoutMs,
      query_timeout: this.timeouts.pgQueryTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: 'detector-worker-infer',
    });
    // An idle client whose server went away emits here; unhandled, it would crash the process.
    pool.on('error', (err) => this.logger.warn({ server: this.label, err: this.describe(err) }, 'idle postgres connection failed; the pool reconnects on next use'));
    this.pool = pool;
    return pool;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.open().query<R>(text, values);
  }

  /** Column names of a table (cached once the table exists). */
  async tableColumns(table: TableName): Promise<Set<string>> {
    const cached = this.columns.get(table.label);
    if (cached) return cached;
    const r = await this.query<{ column_name: string }>(COLUMNS_QUERY, [table.schema, table.table]);
    const cols = new Set(r.rows.map((row) => row.column_name));
    if (cols.size) this.columns.set(table.label, cols);
    return cols;
  }

  /** Creates the initial-record schema and table once per server (concurrent callers share it). */
  ensureInitialTable(table: TableName): Promise<void> {
    let p = this.ensured.get(table.label);
    if (!p) {
      p = this.createInitialTable(table);
      this.ensured.set(table.label, p);
      p.catch(() => this.ensured.delete(table.label));
    }
    return p;
  }

  /** After "relation does not exist": someone dropped it; create it again next time. */
  forgetTable(table: TableName): void {
    this.ensured.delete(table.label);
    this.columns.delete(table.label);
  }

  private async createInitialTable(table: TableName): Promise<void> {
    for (const sql of createInitialTableStatements(table)) {
      try {
        await this.query(sql);
      } catch (err) {
        // Two processes racing on IF NOT EXISTS can collide on the catalog; the object exists.
        if (err instanceof pg.DatabaseError && ['23505', '42P06', '42P07'].includes(err.code ?? '')) continue;
        throw err;
      }
    }
    this.columns.delete(table.label);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.ensured.clear();
    this.columns.clear();
    if (pool) await pool.end().catch(() => {});
  }
}

export type AnyConnection = RedisConnection | PostgresConnection;
