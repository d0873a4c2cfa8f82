/**
 * Write now or queue: a write whose server is unreachable (or already has a backlog, so that
 * order is kept) waits in that server's bounded retry queue. Its outcome is `failed` with a
 * reason starting `queued for retry:`; one that does not fit fails with `dropped:`.
 */
import type { Logger } from '@detector-worker/shared/logging';
import type { ActionOutcome } from '../pipeline/types.js';
import type { AnyConnection } from './connections.js';
import type { RetryJob } from './retry-queue.js';
import type { ActionCounterSet } from './stats.js';

/** What an action body reports; the runner adds node, type and duration. */
export type OutcomeBody = Omit<ActionOutcome, 'node' | 'type' | 'durationMs'>;
export interface WriteResult extends OutcomeBody {
  queued?: boolean;
}

export class WritePolicy {
  constructor(
    private readonly counters: ActionCounterSet,
    private readonly logger: Logger,
  ) {}

  /** Runs a write now, or queues it when its server is unreachable or already has a backlog. */
  async write(conn: AnyConnection, job: RetryJob): Promise<WriteResult> {
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
