/**
 * Counters of the action layer, per action type, for metrics. `ok` / `skipped` / `failed`
 * count outcomes as reported; `queued` counts failed outcomes whose write waits in a retry
 * queue; `retried` counts queued writes applied later; `dropped` counts writes given up
 * (queue full, a permanent error on retry, shutdown, and image saves Redis refused).
 */
import type { ActionOutcome, ActionStatus } from '../pipeline/types.js';

export type ActionType = ActionOutcome['type'];

export interface ActionCounters {
  ok: number;
  skipped: number;
  failed: number;
  queued: number;
  retried: number;
  dropped: number;
}

export interface ActionStats {
  byType: Record<ActionType, ActionCounters>;
  /** Writes waiting in retry queues right now. */
  pending: number;
  /** Open server connections (Redis clients / PostgreSQL pools). */
  connections: { redis: number; postgresql: number };
}

const TYPES: readonly ActionType[] = ['redis_save_image', 'redis_publish', 'postgresql_update_combined', 'initial_record'];

export type CounterName = keyof ActionCounters;

export class ActionCounterSet {
  private readonly counters = new Map<ActionType, ActionCounters>(TYPES.map((t) => [t, { ok: 0, skipped: 0, failed: 0, queued: 0, retried: 0, dropped: 0 }]));

  bump(type: ActionType, name: CounterName | ActionStatus): void {
    const c = this.counters.get(type);
    if (c) c[name]++;
  }

  snapshot(): Record<ActionType, ActionCounters> {
    return Object.fromEntries(TYPES.map((t) => [t, { ...this.counters.get(t)! }])) as Record<ActionType, ActionCounters>;
  }
}
