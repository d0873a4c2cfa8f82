/**
 * The relay's way to infer when there are several replicas: the same `infer()` as one
 * InferClient, but each request goes to the replica the bounded-load ring picks for its model
 * (endpoint-ring.ts), so a model stays loaded on one replica, or a few when its load demands.
 * A replica that fails (unreachable, timing out, 5xx other than 503/429) is skipped for a
 * cooldown, so its groups move to the next replica on the ring within one backoff; one that
 * vanishes from the endpoint list is forgotten and its connections closed.
 */
import { EndpointRing } from './endpoint-ring.js';
import { InferClient, type InferOutcome, type InferRequest } from './infer-client.js';

export interface RouterOptions {
  token: string | undefined;
  timeoutMs: number;
  /** How long a failing replica is skipped. */
  cooldownMs?: number;
  /** Bounded-load factor: no replica above this times the mean in-flight load. */
  loadFactor?: number;
  now?: () => number;
}

export class InferRouter {
  private ring = new EndpointRing([]);
  private readonly clients = new Map<string, InferClient>();
  private readonly inFlight = new Map<string, number>();
  private readonly downUntil = new Map<string, number>();
  /** Requests sent per replica (for tests, metrics and /debug). */
  readonly sent = new Map<string, number>();

  constructor(
    private readonly endpoints: () => readonly string[],
    private readonly options: RouterOptions,
  ) {}

  /** The replica a model's next request would go to (undefined: none known). */
  route(modelId: string): string | undefined {
    this.sync();
    const now = (this.options.now ?? Date.now)();
    const excluded = new Set([...this.downUntil].filter(([, until]) => until > now).map(([e]) => e));
    // When every replica is cooling down, try them anyway rather than send nothing.
    const skip = excluded.size >= this.ring.endpoints.length ? undefined : excluded;
    return this.ring.pick(modelId, (e) => this.inFlight.get(e) ?? 0, { factor: this.options.loadFactor ?? 1.25, ...(skip ? { excluded: skip } : {}) });
  }

  async infer(jpeg: Buffer, r: InferRequest): Promise<InferOutcome> {
    const endpoint = this.route(r.modelId);
    if (!endpoint) return { ok: false, status: 0, code: 'INFER_UNREACHABLE', message: 'no infer endpoint is known', latencyMs: 0 };
    let client = this.clients.get(endpoint);
    if (!client) {
      client = new InferClient(endpoint, this.options.token, this.options.timeoutMs);
      this.clients.set(endpoint, client);
    }
    this.inFlight.set(endpoint, (this.inFlight.get(endpoint) ?? 0) + 1);
    this.sent.set(endpoint, (this.sent.get(endpoint) ?? 0) + 1);
    try {
      const outcome = await client.infer(jpeg, r);
      if (!outcome.ok && (outcome.status === 0 || (outcome.status >= 500 && outcome.status !== 503))) {
        this.downUntil.set(endpoint, (this.options.now ?? Date.now)() + (this.options.cooldownMs ?? 10_000));
      } else if (outcome.ok) this.downUntil.delete(endpoint);
      return outcome;
    } finally {
      this.inFlight.set(endpoint, (this.inFlight.get(endpoint) ?? 1) - 1);
    }
  }

  /** Rebuilds the ring when the endpoint list changed; closes clients of vanished replicas. */
  private sync(): void {
    const list = this.endpoints();
    if (list.length === this.ring.endpoints.length && list.every((e) => this.ring.endpoints.includes(e))) return;
    this.ring = new EndpointRing(list);
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
