/**
 * The action layer: runs a node's `actions` / `parallelActions` and its initial record
 * against the Redis and PostgreSQL servers its pipeline names (spec/pipeline-semantics.md,
 * "Actions and templates", "Initial record").
 *
 * Every action ends in an outcome (`ok`, `skipped` with the reason, `failed` with the
 * reason) and nothing throws out of `run`, so inference answers survive dead servers.
 * Writes that could not reach their server (PostgreSQL upserts and initial records, Redis
 * publishes) are not lost: they wait in the server's bounded retry queue and are applied
 * when it returns. Their outcome is `failed` with a reason starting `queued for retry:`,
 * because the write did not happen within the request; `stats()` counts them as `queued`
 * and later `retried`. A write that does not fit the queue fails with a reason starting
 * `dropped:` and is counted and logged. Image saves are not queued (they are large and
 * only useful fresh): a save Redis refuses is counted as dropped.
 */
import type { Action, InitialRecordConfig, PostgresUpdateCombinedAction, RedisPublishAction, RedisSaveImageAction } from '@detector-worker/shared/pipeline/schema';
import { errorMessage } from '@detector-worker/shared/errors';
import type { Logger } from '@detector-worker/shared/logging';
import { contextLookup, isJsonTemplate, renderTemplate, type RenderResult, type TemplateLookup } from '@detector-worker/shared/templates';
import pg from 'pg';
import { findRegion } from '../pipeline/tree.js';
import type { ActionEvent, ActionOutcome, ActionRunner, PipelineConnections } from '../pipeline/types.js';
import { PostgresConnection, RedisConnection, postgresKeyOf, redisKeyOf, type AnyConnection, type ConnectionTimeouts, type QueueHooks } from './connections.js';
import { formatTimestamp } from './context.js';
import type { RetryJob, RetryPolicy } from './retry-queue.js';
import { sessionIdFor } from './session.js';
import { DEFAULT_INITIAL_TABLE, DEFAULT_SCHEMA, SQL_NOW, buildInitialInsert, buildUpsert, identifierProblem, isNowLiteral, parseTableName, type SqlValue, type TableName } from './sql.js';
import { ActionCounterSet, type ActionStats, type ActionType } from './stats.js';

export interface ActionRunnerDefaults extends Partial<ConnectionTimeouts> {
  /** Schema for tables named without one (original: gas_station_1). */
  schema?: string;
  /** Initial record defaults; a pipeline's own `initialRecord` overrides them key by key. */
  initialRecord?: InitialRecordConfig;
  /** Longest Redis key or channel accepted (bytes of UTF-16 text). */
  maxKeyLength?: number;
  /** How long close() lets queued writes drain before reporting them dropped. */
  closeDrainMs?: number;
}

export interface ActionRunnerOptions {
  logger: Logger;
  retry: RetryPolicy;
  defaults?: ActionRunnerDefaults;
}

export type StatefulActionRunner = ActionRunner & { stats(): ActionStats };

export const DEFAULT_TRIGGER_CLASSES: readonly string[] = ['Car', 'Frontal'];

const TIMEOUT_DEFAULTS: ConnectionTimeouts = {
  redisConnectTimeoutMs: 2000,
  redisCommandTimeoutMs: 2000,
  pgConnectTimeoutMs: 2000,
  pgQueryTimeoutMs: 5000,
  pgPoolSize: 4,
};

export function createActionRunner(options: ActionRunnerOptions): StatefulActionRunner {
  return new ServerActionRunner(options);
}

interface Attached {
  redis?: RedisConnection;
  postgres?: PostgresConnection;
  initialRecord?: InitialRecordConfig;
}

type OutcomeBody = Omit<ActionOutcome, 'node' | 'type' | 'durationMs'>;
interface WriteResult extends OutcomeBody {
  queued?: boolean;
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

class ServerActionRunner implements StatefulActionRunner {
  private readonly logger: Logger;
  private readonly retry: RetryPolicy;
  private readonly timeouts: ConnectionTimeouts;
  private readonly schema: string;
  private readonly initialDefaults: InitialRecordConfig;
  private readonly maxKeyLength: number;
  private readonly closeDrainMs: number;
  private readonly redis = new Map<string, RedisConnection>();
  private readonly postgres = new Map<string, PostgresConnection>();
  private readonly pipelines = new Map<string, Attached>();
  private readonly counters = new ActionCounterSet();
  private readonly hooks: QueueHooks;
  private closed = false;

  constructor(options: ActionRunnerOptions) {
    const d = options.defaults ?? {};
    this.logger = options.logger;
    this.retry = { maxQueued: Math.max(0, options.retry.maxQueued), baseDelayMs: Math.max(1, options.retry.baseDelayMs), maxDelayMs: Math.max(1, options.retry.maxDelayMs) };
    this.timeouts = {
      redisConnectTimeoutMs: d.redisConnectTimeoutMs ?? TIMEOUT_DEFAULTS.redisConnectTimeoutMs,
      redisCommandTimeoutMs: d.redisCommandTimeoutMs ?? TIMEOUT_DEFAULTS.redisCommandTimeoutMs,
      pgConnectTimeoutMs: d.pgConnectTimeoutMs ?? TIMEOUT_DEFAULTS.pgConnectTimeoutMs,
      pgQueryTimeoutMs: d.pgQueryTimeoutMs ?? TIMEOUT_DEFAULTS.pgQueryTimeoutMs,
      pgPoolSize: d.pgPoolSize ?? TIMEOUT_DEFAULTS.pgPoolSize,
    };
    this.schema = d.schema ?? DEFAULT_SCHEMA;
    this.initialDefaults = d.initialRecord ?? {};
    this.maxKeyLength = d.maxKeyLength ?? 1024;
    this.closeDrainMs = d.closeDrainMs ?? 2000;
    this.hooks = {
      onApplied: (job) => {
        this.counters.bump(job.type, 'retried');
        this.logger.info({ node: job.node, type: job.type, target: job.target }, 'queued write applied');
      },
      onDropped: (job, reason) => {
        this.counters.bump(job.type, 'dropped');
        this.logger.error({ node: job.node, type: job.type, target: job.target, reason }, 'queued write dropped');
      },
    };
  }

  // -------------------------------------------------------------------------------------
  // Connections

  attach(pipelineKey: string, connections: PipelineConnections): void {
    if (this.closed) {
      this.logger.warn({ pipeline: pipelineKey }, 'attach after close ignored');
      return;
    }
    if (this.pipelines.has(pipelineKey)) void this.detach(pipelineKey);
    const attached: Attached = {};
    if (connections.initialRecord) attached.initialRecord = connections.initialRecord;
    if (connections.redis) {
      const key = redisKeyOf(connections.redis);
      let conn = this.redis.get(key);
      if (!conn) {
        const created: RedisConnection = new RedisConnection(connections.redis, this.timeouts, this.logger, this.retry, this.hooks, () => this.closeIfIdle(created));
        this.redis.set(key, created);
        conn = created;
      }
      conn.users.add(pipelineKey);
      conn.closeWhenIdle = false;
      attached.redis = conn;
    }
    if (connections.postgresql) {
      const key = postgresKeyOf(connections.postgresql);
      let conn = this.postgres.get(key);
      if (!conn) {
        const created: PostgresConnection = new PostgresConnection(connections.postgresql, this.timeouts, this.logger, this.retry, this.hooks, () => this.closeIfIdle(created));
        this.postgres.set(key, created);
        conn = created;
      }
      conn.users.add(pipelineKey);
      conn.closeWhenIdle = false;
      attached.postgres = conn;
    }
    this.pipelines.set(pipelineKey, attached);
    this.logger.debug({ pipeline: pipelineKey, redis: attached.redis?.label, postgresql: attached.postgres?.label }, 'pipeline attached to action servers');
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

  stats(): ActionStats {
    const conns: AnyConnection[] = [...this.redis.values(), ...this.postgres.values()];
    return {
      byType: this.counters.snapshot(),
      pending: conns.reduce((n, c) => n + c.queue.size, 0),
      connections: { redis: this.redis.size, postgresql: this.postgres.size },
    };
  }

  // -------------------------------------------------------------------------------------
  // Running actions

  async run(actions: readonly Action[], event: ActionEvent): Promise<ActionOutcome[]> {
    const outcomes: ActionOutcome[] = [];
    for (const action of actions) {
      // Sequential: a save sets {image_key} for the publish after it.
      outcomes.push(await this.timed(actionType(action), event, () => this.dispatch(action, event)));
    }
    return outcomes;
  }

  async initialRecord(event: ActionEvent): Promise<ActionOutcome | null> {
    try {
      const attached = this.pipelines.get(event.pipelineKey);
      const conn = attached?.postgres;
      if (!conn || !event.node.multiClass) return null;
      const config: InitialRecordConfig = { ...this.initialDefaults, ...attached.initialRecord };
      if (config.enabled === false) return null;
      const triggers = config.triggerClasses ?? DEFAULT_TRIGGER_CLASSES;
      if (!triggers.every((c) => findRegion(event.regions, c))) return null;
      return await this.timed('initial_record', event, () => this.writeInitialRecord(conn, config, event));
    } catch (err) {
      // Never throws, like run(): a bug here must not cost the inference answer.
      return this.finish('initial_record', event, { status: 'failed', reason: errorMessage(err) }, 0);
    }
  }

  private async timed(type: ActionType, event: ActionEvent, body: () => Promise<OutcomeBody>): Promise<ActionOutcome> {
    const started = performance.now();
    let result: OutcomeBody;
    if (this.closed) result = { status: 'failed', reason: 'action runner is closed' };
    else {
      try {
        result = await body();
      } catch (err) {
        result = { status: 'failed', reason: errorMessage(err).slice(0, 500) };
      }
    }
    return this.finish(type, event, result, performance.now() - started);
  }

  private finish(type: ActionType, event: ActionEvent, body: OutcomeBody, ms: number): ActionOutcome {
    const { status, reason, target } = body as WriteResult;
    const outcome: ActionOutcome = { node: event.node.modelId, type, status, ...(reason !== undefined ? { reason } : {}), ...(target !== undefined ? { target } : {}), durationMs: Math.round(ms * 100) / 100 };
    this.counters.bump(type, status);
    const log = { pipeline: event.pipelineKey, node: outcome.node, type, target, reason };
    // Queued writes were logged by enqueue(); a long outage must not log every event twice.
    if (status === 'failed' && !(body as WriteResult).queued) this.logger.warn(log, 'action failed');
    else this.logger.debug({ ...log, status, durationMs: outcome.durationMs }, 'action done');
    return outcome;
  }

  private dispatch(action: Action, event: ActionEvent): Promise<OutcomeBody> {
    switch (action.type) {
      case 'redis_save_image':
        return this.saveImage(action, event);
      case 'redis_publish':
        return this.publish(action, event);
      case 'postgresql_update_combined':
        return this.updateCombined(action, event);
      default:
        return Promise.resolve({ status: 'failed', reason: `unknown action type ${JSON.stringify((action as { type?: unknown }).type)}` });
    }
  }

  private lookup(event: ActionEvent): TemplateLookup {
    return contextLookup(event.context, event.branchResults as unknown as Record<string, Record<string, unknown>>);
  }

  private noServer(kind: 'redis' | 'postgresql'): OutcomeBody {
    return { status: 'failed', reason: `pipeline.json configures no "${kind}" server for this action` };
  }

  /** A Redis key or channel: rendered as text, non-empty, bounded. */
  private renderName(template: string, lookup: TemplateLookup, what: string): { name: string } | { problem: string } {
    const { text } = renderTemplate(template, lookup, { json: false });
    if (!text) return { problem: `${what} template ${JSON.stringify(template)} rendered empty` };
    if (text.length > this.maxKeyLength) return { problem: `${what} is ${text.length} characters, over the limit of ${this.maxKeyLength}` };
    return { name: text };
  }

  private async saveImage(action: RedisSaveImageAction, event: ActionEvent): Promise<OutcomeBody> {
    const conn = this.pipelines.get(event.pipelineKey)?.redis;
    if (!conn) return this.noServer('redis');
    const key = this.renderName(action.key, this.lookup(event), 'key');
    if ('problem' in key) return { status: 'failed', reason: key.problem };
    // Missing or absent region: the whole frame, as the original did.
    const region = action.region ? findRegion(event.regions, action.region) : undefined;
    let client;
    try {
      client = await conn.ready();
    } catch (err) {
      this.counters.bump('redis_save_image', 'dropped');
      return { status: 'failed', reason: `image not saved, redis unavailable: ${conn.describe(err)}`, target: key.name };
    }
    const bytes = await event.image.encode(region?.bbox, action.format ?? 'jpeg', action.quality ?? 90);
    try {
      if (action.expire_seconds !== undefined) await client.set(key.name, bytes, 'EX', action.expire_seconds);
      else await client.set(key.name, bytes);
    } catch (err) {
      this.counters.bump('redis_save_image', 'dropped');
      return { status: 'failed', reason: `image not saved: ${conn.describe(err)}`, target: key.name };
    }
    event.context.image_key = key.name;
    return { status: 'ok', target: key.name };
  }

  private async publish(action: RedisPublishAction, event: ActionEvent): Promise<OutcomeBody> {
    const conn = this.pipelines.get(event.pipelineKey)?.redis;
    if (!conn) return this.noServer('redis');
    const lookup = this.lookup(event);
    const channel = this.renderName(action.channel, lookup, 'channel');
    if ('problem' in channel) return { status: 'failed', reason: channel.problem };
    const message = renderMessage(action.message, lookup).text;
    return this.write(conn, {
      type: 'redis_publish',
      node: event.node.modelId,
      target: channel.name,
      run: async () => {
        const client = await conn.ready();
        await client.publish(channel.name, message);
      },
    });
  }

  private async updateCombined(action: PostgresUpdateCombinedAction, event: ActionEvent): Promise<OutcomeBody> {
    const missing = action.waitForBranches.filter((b) => !hasOwn(event.branchResults, b));
    if (missing.length) return { status: 'skipped', reason: `waiting for branch results that did not arrive: ${missing.join(', ')}` };
    const conn = this.pipelines.get(event.pipelineKey)?.postgres;
    if (!conn) return this.noServer('postgresql');

    const problems = updateNameProblems(action);
    if (problems.length) return { status: 'failed', reason: `refused: ${problems.join('; ')}` };
    const table = parseTableName(action.table, this.schema);

    const lookup = this.lookup(event);
    const key = renderTemplate(action.key_value, lookup, { json: false });
    if (key.missing.length || !key.text) return { status: 'skipped', reason: `key_value ${JSON.stringify(action.key_value)} has no value (${key.missing.join(', ') || 'empty'})`, target: table.label };

    const fields: Array<[string, SqlValue]> = [];
    const unresolved: string[] = [];
    for (const [column, template] of Object.entries(action.fields)) {
      if (column === action.key_field) continue;
      if (isNowLiteral(template)) {
        fields.push([column, SQL_NOW]);
        continue;
      }
      const r: RenderResult = renderTemplate(template, lookup, { json: false });
      if (r.missing.length) unresolved.push(`${column} (${r.missing.join(', ')})`);
      else fields.push([column, r.text]);
    }
    // NOW() alone carries no detection data: nothing to write.
    if (!fields.some(([, v]) => v !== SQL_NOW)) return { status: 'skipped', reason: `no field could be resolved: ${unresolved.join(', ') || 'none given'}`, target: table.label };

    const keyValue = key.text;
    const result = await this.write(conn, {
      type: 'postgresql_update_combined',
      node: event.node.modelId,
      target: table.label,
      run: async () => {
        const columns = await conn.tableColumns(table);
        const statement = buildUpsert({ table, keyColumn: action.key_field, keyValue, fields, touchUpdatedAt: columns.has('updated_at') });
        await conn.query(statement.text, statement.values);
      },
    });
    if (result.status === 'ok' && unresolved.length) result.reason = `left out unresolved fields: ${unresolved.join(', ')}`;
    return result;
  }

  private async writeInitialRecord(conn: PostgresConnection, config: InitialRecordConfig, event: ActionEvent): Promise<OutcomeBody> {
    const tableName = config.table ?? DEFAULT_INITIAL_TABLE;
    let table: TableName;
    try {
      table = parseTableName(tableName, this.schema);
    } catch (err) {
      return { status: 'failed', reason: `refused: ${errorMessage(err)}` };
    }
    const sessionId = sessionIdFor(event.request, event.node.modelId);
    const ts = event.context.timestamp;
    const display = event.context.display_id;
    const statement = buildInitialInsert(table, {
      sessionId,
      displayId: display === null || display === undefined ? null : String(display),
      capturedTimestamp: typeof ts === 'string' && ts ? ts : formatTimestamp(Date.now()),
    });
    const result = await this.write(conn, {
      type: 'initial_record',
      node: event.node.modelId,
      target: table.label,
      run: async () => {
        await conn.ensureInitialTable(table);
        try {
          await conn.query(statement.text, statement.values);
        } catch (err) {
          // The table was dropped behind our back (cached as created): create it again once.
          if (!(err instanceof pg.DatabaseError) || !['42P01', '3F000'].includes(err.code ?? '')) throw err;
          conn.forgetTable(table);
          await conn.ensureInitialTable(table);
          await conn.query(statement.text, statement.values);
        }
      },
    });
    // The session exists (or will, once the queued insert lands): later actions key on it.
    if (result.status === 'ok' || result.queued) event.context.session_id = sessionId;
    return result;
  }

  /** Runs a write now, or queues it when its server is unreachable or already has a backlog. */
  private async write(conn: AnyConnection, job: RetryJob): Promise<WriteResult> {
    if (conn.queue.size > 0) return this.enqueue(conn, job, `${conn.queue.size} earlier write(s) to ${conn.label} still waiting`);
    try {
      await job.run();
      return { status: 'ok', target: job.target };
    } catch (err) {
      const why = conn.describe(err);
      if (conn.retryable(err)) return this.enqueue(conn, job, why);
      return { status: 'failed', reason: why, target: job.target };
    }
  }

  private enqueue(conn: AnyConnection, job: RetryJob, why: string): WriteResult {
    if (conn.queue.push(job)) {
      this.counters.bump(job.type, 'queued');
      // Warn when an outage starts; every further queued write is a debug line.
      const level = conn.queue.size === 1 ? 'warn' : 'debug';
      this.logger[level]({ server: conn.label, node: job.node, type: job.type, target: job.target, pending: conn.queue.size, reason: why }, 'write queued for retry');
      return { status: 'failed', reason: `queued for retry: ${why}`, target: job.target, queued: true };
    }
    this.counters.bump(job.type, 'dropped');
    // Every drop is counted; the error line is at most one per second per server, with the count.
    conn.overflowSinceLog++;
    const now = Date.now();
    if (now - conn.lastOverflowLog >= 1000) {
      this.logger.error(
        { server: conn.label, node: job.node, type: job.type, target: job.target, maxQueued: conn.queue.capacity, droppedSinceLastLog: conn.overflowSinceLog, reason: why },
        'retry queue full: writes dropped',
      );
      conn.overflowSinceLog = 0;
      conn.lastOverflowLog = now;
    }
    return { status: 'failed', reason: `dropped: retry queue for ${conn.label} is full (${conn.queue.capacity} waiting); ${why}`, target: job.target };
  }
}

function actionType(action: Action): ActionType {
  const t = (action as { type?: unknown }).type;
  return t === 'redis_save_image' || t === 'redis_publish' || t === 'postgresql_update_combined' ? t : 'redis_publish';
}

/**
 * A publish message: JSON-aware rendering when the template is JSON (values escaped, so a
 * quote in a class name cannot break it). A template that only looks like JSON (`{a}-{b}`)
 * does not parse after JSON rendering; it is plain text and rendered as such.
 */
export function renderMessage(template: string, lookup: TemplateLookup): RenderResult {
  if (isJsonTemplate(template)) {
    const r = renderTemplate(template, lookup, { json: true });
    try {
      JSON.parse(r.text);
      return r;
    } catch {
      /* not JSON after all */
    }
  }
  return renderTemplate(template, lookup, { json: false });
}

/** Every unusable schema/table/column name of an update action, as readable problems. */
export function updateNameProblems(action: Pick<PostgresUpdateCombinedAction, 'table' | 'key_field' | 'fields'>): string[] {
  const problems: string[] = [];
  const parts = action.table.split('.');
  if (parts.length > 2) problems.push(`table ${JSON.stringify(action.table)} must be "table" or "schema.table"`);
  else if (parts.length === 2) {
    const s = identifierProblem(parts[0]!, 'schema');
    const t = identifierProblem(parts[1]!, 'table');
    if (s) problems.push(s);
    if (t) problems.push(t);
  } else {
    const t = identifierProblem(action.table, 'table');
    if (t) problems.push(t);
  }
  const k = identifierProblem(action.key_field, 'key_field');
  if (k) problems.push(k);
  for (const column of Object.keys(action.fields)) {
    const c = identifierProblem(column, 'column');
    if (c) problems.push(c);
  }
  return problems;
}
