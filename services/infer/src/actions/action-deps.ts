/** What every action body gets from the runner: the pipeline's servers, the write policy, limits. */
import { contextLookup, type TemplateLookup } from '@detector-worker/shared/templates';
import type { ActionEvent } from '../pipeline/types.js';
import type { ActionServers } from './servers.js';
import type { ActionCounterSet } from './stats.js';
import type { OutcomeBody, WritePolicy } from './write-policy.js';

export interface ActionDeps {
  servers: ActionServers;
  writes: WritePolicy;
  counters: ActionCounterSet;
  /** Schema for tables named without one. */
  schema: string;
  /** Longest Redis key or channel accepted. */
  maxKeyLength: number;
}

/** Template values of an event: its context, then `{branch.field}` from branch results. */
export function eventLookup(event: ActionEvent): TemplateLookup {
  return contextLookup(event.context, event.branchResults as unknown as Record<string, Record<string, unknown>>);
}

export function noServer(kind: 'redis' | 'postgresql'): OutcomeBody {
  return { status: 'failed', reason: `pipeline.json configures no "${kind}" server for this action` };
}
