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
import type { Action, InitialRecordConfig } from '@detector-worker/shared/pipeline/schema';
import { errorMessage } from '@detector-worker/shared/errors';
import type { Logger } from '@detector-worker/shared/logging';
import { findRegion } from '../pipeline/tree.js';
import type { ActionRunner, PipelineConnections } from '../pipeline/ports.js';
import type { ActionEvent, ActionOutcome } from '../pipeline/types.js';
import type { ActionDeps } from './action-deps.js';
import type { ConnectionTimeouts, QueueHooks } from './connections.js';
import { updateCombined, writeInitialRecord } from './postgres-actions.js';
import { publish, saveImage } from './redis-actions.js';
import type { RetryPolicy } from './retry-queue.js';
import { ActionServers } from './servers.js';
import { DEFAULT_SCHEMA } from './sql.js';
import { ActionCounterSet, type ActionStats, type ActionType } from './stats.js';
import { WritePolicy, type OutcomeBody, type WriteResult } from './write-policy.js';

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

class ServerActionRunner implements StatefulActionRunner {
  private readonly logger: Logger;
  private readonly initialDefaults: InitialRecordConfig;
  private readonly counters = new ActionCounterSet();
  private readonly servers: ActionServers;
  private readonly deps: ActionDeps;
  private closed = false;

  constructor(options: ActionRunnerOptions) {
    const d = options.defaults ?? {};
    this.logger = options.logger;
    const retry: RetryPolicy = { maxQueued: Math.max(0, options.retry.maxQueued), baseDelayMs: Math.max(1, options.retry.baseDelayMs), maxDelayMs: Math.max(1, options.retry.maxDelayMs) };
    const timeouts: ConnectionTimeouts = {
      redisConnectTimeoutMs: d.redisConnectTimeoutMs ?? TIMEOUT_DEFAULTS.redisConnectTimeoutMs,
      redisCommandTimeoutMs: d.redisCommandTimeoutMs ?? TIMEOUT_DEFAULTS.redisCommandTimeoutMs,
      pgConnectTimeoutMs: d.pgConnectTimeoutMs ?? TIMEOUT_DEFAULTS.pgConnectTimeoutMs,
      pgQueryTimeoutMs: d.pgQueryTimeoutMs ?? TIMEOUT_DEFAULTS.pgQueryTimeoutMs,
      pgPoolSize: d.pgPoolSize ?? TIMEOUT_DEFAULTS.pgPoolSize,
    };
    this.initialDefaults = d.initialRecord ?? {};
    const hooks: QueueHooks = {
      onApplied: (job) => {
        this.counters.bump(job.type, 'retried');
        this.logger.info({ node: job.node, type: job.type, target: job.target }, 'queued write applied');
      },
      onDropped: (job, reason) => {
        this.counters.bump(job.type, 'dropped');
        this.logger.error({ node: job.node, type: job.type, target: job.target, reason }, 'queued write dropped');
      },
    };
    this.servers = new ActionServers(this.logger, timeouts, retry, hooks, d.closeDrainMs ?? 2000);
    this.deps = {
      servers: this.servers,
      writes: new WritePolicy(this.counters, this.logger),
      counters: this.counters,
      schema: d.schema ?? DEFAULT_SCHEMA,
      maxKeyLength: d.maxKeyLength ?? 1024,
    };
  }

  attach(pipelineKey: string, connections: PipelineConnections): void {
    this.servers.attach(pipelineKey, connections);
  }

  detach(pipelineKey: string): Promise<void> {
    return this.servers.detach(pipelineKey);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.servers.close();
  }

  stats(): ActionStats {
    return { byType: this.counters.snapshot(), ...this.servers.usage() };
  }

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
      const attached = this.servers.of(event.pipelineKey);
      const conn = attached?.postgres;
      if (!conn || !event.node.multiClass) return null;
      const config: InitialRecordConfig = { ...this.initialDefaults, ...attached.initialRecord };
      if (config.enabled === false) return null;
      const triggers = config.triggerClasses ?? DEFAULT_TRIGGER_CLASSES;
      if (!triggers.every((c) => findRegion(event.regions, c))) return null;
      return await this.timed('initial_record', event, () => writeInitialRecord(conn, config, event, this.deps));
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
    // Queued writes were logged when queued; a long outage must not log every event twice.
    if (status === 'failed' && !(body as WriteResult).queued) this.logger.warn(log, 'action failed');
    else this.logger.debug({ ...log, status, durationMs: outcome.durationMs }, 'action done');
    return outcome;
  }

  private dispatch(action: Action, event: ActionEvent): Promise<OutcomeBody> {
    switch (action.type) {
      case 'redis_save_image':
        return saveImage(action, event, this.deps);
      case 'redis_publish':
        return publish(action, event, this.deps);
      case 'postgresql_update_combined':
        return updateCombined(action, event, this.deps);
      default:
        return Promise.resolve({ status: 'failed', reason: `unknown action type ${JSON.stringify((action as { type?: unknown }).type)}` });
    }
  }
}

function actionType(action: Action): ActionType {
  const t = (action as { type?: unknown }).type;
  return t === 'redis_save_image' || t === 'redis_publish' || t === 'postgresql_update_combined' ? t : 'redis_publish';
}
