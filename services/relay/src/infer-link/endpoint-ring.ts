/**
 * Which infer replica serves a model: consistent hashing with bounded loads (Mirrokni,
 * Thorup, Zadimoghaddam, 2016; the scheme Envoy, HAProxy and Vimeo use). Each model id hashes
 * to a point on a ring of replica points and goes to the first replica clockwise whose load
 * is below ceil(c × (total load + 1) / replicas). A model so stays on one replica (its
 * pipeline loaded once, hot there), spreads to the next one on the ring only when that replica
 * is full, and no replica takes more than c times the mean. Pure: loads come in, a choice
 * comes out.
 */
import { createHash } from 'node:crypto';

/** Points per replica: enough that shares of the ring stay within a few per cent. */
const POINTS_PER_ENDPOINT = 160;

function hash32(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0);
}

/** The most load one of `replicas` may carry: ceil(c x (total + 1) / replicas), the +1 being the newcomer. */
export function loadBound(total: number, replicas: number, factor = 1.25): number {
  return Math.ceil((factor * (total + 1)) / replicas);
}

export class EndpointRing {
  private readonly points: Array<{ at: number; endpoint: string }>;
  readonly endpoints: readonly string[];

  constructor(endpoints: readonly string[]) {
    this.endpoints = [...new Set(endpoints)].sort();
    this.points = this.endpoints
      .flatMap((endpoint) => Array.from({ length: POINTS_PER_ENDPOINT }, (_, i) => ({ at: hash32(`${endpoint}#${i}`), endpoint })))
      .sort((a, b) => a.at - b.at || (a.endpoint < b.endpoint ? -1 : 1));
  }

  /** Every replica once, in ring order from the key's point: its home first, then fallbacks. */
  order(key: string): string[] {
    const n = this.points.length;
    if (n === 0) return [];
    const h = hash32(key);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]!.at < h) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < n && out.length < this.endpoints.length; i++) {
      const e = this.points[(lo + i) % n]!.endpoint;
      if (!seen.has(e)) {
        seen.add(e);
        out.push(e);
      }
    }
    return out;
  }

  /**
   * The replica for `key` given each replica's current load, skipping `excluded` ones (failing
   * or gone): the first in ring order under the bound, `preferred` ones (say, those that have
   * the model loaded already) before the others.
   */
  pick(
    key: string,
    load: (endpoint: string) => number,
    options: { factor?: number; excluded?: ReadonlySet<string>; preferred?: (endpoint: string) => boolean } = {},
  ): string | undefined {
    const factor = options.factor ?? 1.25;
    const candidates = this.order(key).filter((e) => !options.excluded?.has(e));
    if (candidates.length === 0) return undefined;
    const bound = loadBound(candidates.reduce((sum, e) => sum + load(e), 0), candidates.length, factor);
    const under = candidates.filter((e) => load(e) < bound);
    return (options.preferred && under.find(options.preferred)) ?? under[0] ?? candidates[0];
  }
}
