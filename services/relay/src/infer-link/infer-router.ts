/**
 * The relay's way to infer when there are several replicas: the same `infer()` as one
 * InferClient, but each frame group is placed on a replica by the bounded-load ring
 * (endpoint-ring.ts) keyed by its model, so a model stays loaded on one replica, or a few when
 * its groups are too many for one.
 *
 * The load that is bounded is the number of frame groups a replica serves, not its requests in
 * flight: a group sends one frame at a time at a steady rate, so groups are the lasting load,
 * while in-flight counts are 0 or 1 most of the time and would push a model to another replica
 * (another load) whenever two requests overlap. A group stays where it was placed while that
 * replica is up and within the bound, so its model stays hot there; a new group joins a replica
 * that already serves its model when one is within the bound, so a model that spills past its
 * home spills to one more replica, not to every one.
 *
 * A replica that fails (unreachable, timing out, 5xx other than 503/429) is skipped for a
 * cooldown and the failing group is placed again, so groups move to the next replica on the
 * ring within one backoff. Placements made while a replica was skipped are detours: they are
 * placed afresh once nothing is skipped, so groups go back home after the cooldown. A replica
 * that vanishes from the endpoint list is forgotten and its connections closed.
 */
import { EndpointRing, loadBound } from './endpoint-ring.js';
import { InferClient, type InferOutcome, type InferRequest } from './infer-client.js';

export interface RouterOptions {
  token: string | undefined;
  timeoutMs: number;
  /** How long a failing replica is skipped. */
  cooldownMs?: number;
  /** Bounded-load factor: no replica above this times the mean number of groups. */
  loadFactor?: number;
  /** A group that sent nothing this long no longer counts (unsubscribed, or very slow). */
  groupIdleMs?: number;
  now?: () => number;
}

interface Placement {
  endpoint: string;
  modelId: string;
  usedAt: number;
  /** Placed while some replica was skipped: temporary. */
  detour: boolean;
}

/** A frame group as the router sees it: its model and the subscription that speaks for it. */
const groupKey = (modelId: string, subscriptionIdentifier: string): string => `${modelId}\n${subscriptionIdentifier}`;

export class InferRouter {
  private ring = new EndpointRing([]);
  private readonly clients = new Map<string, InferClient>();
  private readonly downUntil = new Map<string, number>();
  private readonly placements = new Map<string, Placement>();
  /** Requests sent per replica (for tests, metrics and /debug). */
  readonly sent = new Map<string, number>();

  constructor(
    private readonly endpoints: () => readonly string[],
    private readonly options: RouterOptions,
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * The replica a group's next request goes to (undefined: none known); without a
   * subscription, where a new group of the model would be placed.
   */
  route(modelId: string, subscriptionIdentifier?: string): string | undefined {
    return this.place(modelId, subscriptionIdentifier)?.endpoint;
  }

  private place(modelId: string, subscriptionIdentifier: string | undefined): { endpoint: string; detour: boolean } | undefined {
    this.sync();
    const now = this.now();
    this.forgetIdle(now);
    const key = subscriptionIdentifier === undefined ? undefined : groupKey(modelId, subscriptionIdentifier);
    const down = new Set([...this.downUntil].filter(([e, until]) => until > now && this.ring.endpoints.includes(e)).map(([e]) => e));
    // When every replica is cooling down, try them anyway rather than send nothing.
    const skip = down.size > 0 && down.size < this.ring.endpoints.length ? down : undefined;
    const groups = new Map<string, number>();
    const serving = new Set<string>();
    for (const [k, p] of this.placements) {
      if (k === key) continue;
      groups.set(p.endpoint, (groups.get(p.endpoint) ?? 0) + 1);
      // Detours attract a model's other groups only while they last (back home together after).
      if (p.modelId === modelId && (skip || !p.detour)) serving.add(p.endpoint);
    }
    const load = (e: string) => groups.get(e) ?? 0;
    const factor = this.options.loadFactor ?? 1.25;
    const current = key === undefined ? undefined : this.placements.get(key);
    if (current && this.ring.endpoints.includes(current.endpoint) && !skip?.has(current.endpoint) && (skip || !current.detour)) {
      const candidates = this.ring.endpoints.filter((e) => !skip?.has(e));
      const total = candidates.reduce((sum, e) => sum + load(e), 0);
      if (load(current.endpoint) < loadBound(total, candidates.length, factor)) return { endpoint: current.endpoint, detour: current.detour };
    }
    const endpoint = this.ring.pick(modelId, load, { factor, preferred: (e) => serving.has(e), ...(skip ? { excluded: skip } : {}) });
    return endpoint === undefined ? undefined : { endpoint, detour: skip !== undefined };
  }

  async infer(body: Buffer, r: InferRequest): Promise<InferOutcome> {
    const placed = this.place(r.modelId, r.subscriptionIdentifier);
    if (!placed) return { ok: false, status: 0, code: 'INFER_UNREACHABLE', message: 'no infer endpoint is known', latencyMs: 0 };
    const { endpoint } = placed;
    const key = groupKey(r.modelId, r.subscriptionIdentifier);
    this.placements.set(key, { endpoint, modelId: r.modelId, usedAt: this.now(), detour: placed.detour });
    let client = this.clients.get(endpoint);
    if (!client) {
      client = new InferClient(endpoint, this.options.token, this.options.timeoutMs);
      this.clients.set(endpoint, client);
    }
    this.sent.set(endpoint, (this.sent.get(endpoint) ?? 0) + 1);
    const outcome = await client.infer(body, r);
    if (!outcome.ok && (outcome.status === 0 || (outcome.status >= 500 && outcome.status !== 503))) {
      this.downUntil.set(endpoint, this.now() + (this.options.cooldownMs ?? 10_000));
      // Placed again on its next request, away from the failing replica.
      if (this.placements.get(key)?.endpoint === endpoint) this.placements.delete(key);
    } else if (outcome.ok) this.downUntil.delete(endpoint);
    return outcome;
  }

  private forgetIdle(now: number): void {
    const idleMs = this.options.groupIdleMs ?? 30_000;
    for (const [k, p] of this.placements) if (now - p.usedAt > idleMs) this.placements.delete(k);
  }

  /** Rebuilds the ring when the endpoint list changed; closes clients of vanished replicas. */
  private sync(): void {
    const list = this.endpoints();
    if (list.length === this.ring.endpoints.length && list.every((e) => this.ring.endpoints.includes(e))) return;
    this.ring = new EndpointRing(list);
    for (const [k, p] of this.placements) if (!list.includes(p.endpoint)) this.placements.delete(k);
    for (const [endpoint, client] of this.clients) {
      if (list.includes(endpoint)) continue;
      this.clients.delete(endpoint);
      this.downUntil.delete(endpoint);
      void client.close();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }
}
