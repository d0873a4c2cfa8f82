/**
 * Which Redis client and PostgreSQL pool each pipeline writes to. Pipelines naming the same
 * server share one connection; a connection closes when its last pipeline leaves, unless
 * writes still wait in its retry queue, in which case it closes once they are applied.
 */
import type { InitialRecordConfig } from '@detector-worker/shared/pipeline/schema';
import type { Logger } from '@detector-worker/shared/logging';
import type { PipelineConnections } from '../pipeline/ports.js';
import { PostgresConnection, RedisConnection, postgresKeyOf, redisKeyOf, type AnyConnection, type ConnectionTimeouts, type QueueHooks } from './connections.js';
import type { RetryPolicy } from './retry-queue.js';

/** What one pipeline writes to. */
export interface Attached {
  redis?: RedisConnection;
  postgres?: PostgresConnection;
  initialRecord?: InitialRecordConfig;
}

export class ActionServers {
  private readonly redis = new Map<string, RedisConnection>();
  private readonly postgres = new Map<string, PostgresConnection>();
  private readonly pipelines = new Map<string, Attached>();
  private closed = false;

  constructor(
    private readonly logger: Logger,
    private readonly timeouts: ConnectionTimeouts,
    private readonly retry: RetryPolicy,
    private readonly hooks: QueueHooks,
    /** How long close() lets queued writes drain before reporting them dropped. */
    private readonly closeDrainMs: number,
  ) {}

  /** The servers of a pipeline, or undefined when it was never attached. */
  of(pipelineKey: string): Attached | undefined {
    return this.pipelines.get(pipelineKey);
  }

  attach(pipelineKey: string, connections: PipelineConnections): void {
    if (this.closed) {
      this.logger.warn({ pipeline: pipelineKey }, 'attach after close ignored');
      return;
    }
    if (this.pipelines.has(pipelineKey)) void this.detach(pipelineKey);
    const attached: Attached = {};
    if (connections.initialRecord) attached.initialRecord = connections.initialRecord;
    const redis = connections.redis;
    if (redis) {
      attached.redis = this.acquire(this.redis, redisKeyOf(redis), pipelineKey, (onIdle) => new RedisConnection(redis, this.timeouts, this.logger, this.retry, this.hooks, onIdle));
    }
    const postgres = connections.postgresql;
    if (postgres) {
      attached.postgres = this.acquire(this.postgres, postgresKeyOf(postgres), pipelineKey, (onIdle) => new PostgresConnection(postgres, this.timeouts, this.logger, this.retry, this.hooks, onIdle));
    }
    this.pipelines.set(pipelineKey, attached);
    this.logger.debug({ pipeline: pipelineKey, redis: attached.redis?.label, postgresql: attached.postgres?.label }, 'pipeline attached to action servers');
  }

  /** The shared connection for a server key, created on first use, with the pipeline as a user. */
  private acquire<C extends AnyConnection>(map: Map<string, C>, key: string, pipelineKey: string, create: (onIdle: () => void) => C): C {
    let conn = map.get(key);
    if (!conn) {
      const created: C = create(() => this.closeIfIdle(created));
      map.set(key, created);
      conn = created;
    }
    conn.users.add(pipelineKey);
    conn.closeWhenIdle = false;
    return conn;
  }

  async detach(pipelineKey: string): Promise<void> {
    const attached = this.pipelines.get(pipelineKey);
    if (!attached) return;
    this.pipelines.delete(pipelineKey);
    const conns = [attached.redis, attached.postgres].filter((c): c is AnyConnection => c !== undefined);
    await Promise.all(conns.map((c) => this.release(c, pipelineKey)));
  }

  private async release(conn: AnyConnection, pipelineKey: string): Promise<void> {
    conn.users.delete(pipelineKey);
    if (conn.users.size > 0) return;
    if (conn.queue.size > 0) {
      // Unused now, but its queued writes still have to reach the server.
      conn.closeWhenIdle = true;
      this.logger.info({ server: conn.label, pending: conn.queue.size }, 'server unused; kept open until its queued writes are applied');
      return;
    }
    await this.dispose(conn);
  }

  private closeIfIdle(conn: AnyConnection): void {
    if (!conn.disposed && conn.closeWhenIdle && conn.users.size === 0 && conn.queue.size === 0) void this.dispose(conn);
  }

  private async dispose(conn: AnyConnection): Promise<void> {
    if (conn.disposed) return;
    conn.disposed = true;
    const map: Map<string, AnyConnection> = conn instanceof RedisConnection ? this.redis : this.postgres;
    if (map.get(conn.key) === conn) map.delete(conn.key);
    conn.queue.close();
    await conn.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all: AnyConnection[] = [...this.redis.values(), ...this.postgres.values()];
    this.redis.clear();
    this.postgres.clear();
    this.pipelines.clear();
    // One last chance for queued writes, then whatever is left is reported dropped.
    await Promise.all(
      all.map((c) => {
        c.queue.kick();
        return c.queue.whenIdle(this.closeDrainMs);
      }),
    );
    for (const c of all) {
      c.disposed = true;
      const left = c.queue.close();
      if (left) this.logger.error({ server: c.label, dropped: left }, 'closing with queued writes the server never accepted');
    }
    await Promise.all(all.map((c) => c.close()));
  }

  /** Writes waiting in every retry queue, and open connections by kind. */
  usage(): { pending: number; connections: { redis: number; postgresql: number } } {
    const conns: AnyConnection[] = [...this.redis.values(), ...this.postgres.values()];
    return { pending: conns.reduce((n, c) => n + c.queue.size, 0), connections: { redis: this.redis.size, postgresql: this.postgres.size } };
  }
}
