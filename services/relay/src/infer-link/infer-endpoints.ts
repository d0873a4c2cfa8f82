/**
 * The infer replicas the relay may send to: INFER_URL as a comma-separated list, where an
 * http URL naming a host (a headless Kubernetes Service) stands for every address the name
 * resolves to, looked up again every refresh. Replicas that scale up or down so join and
 * leave the ring without a restart. An https URL keeps its name (its certificate names the
 * host, not a pod address), as does an IP address or localhost.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '@detector-worker/shared/logging';

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

/** Whether a URL's host is looked up and expanded to one endpoint per address. */
export function expands(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return url.protocol === 'http:' && isIP(host) === 0 && host !== 'localhost';
}

/** The URL with its host replaced by an address (IPv6 in brackets), without a trailing slash. */
export function withAddress(url: URL, address: string): string {
  const copy = new URL(url.href);
  copy.hostname = isIP(address) === 6 ? `[${address}]` : address;
  return copy.href.replace(/\/$/, '');
}

export class InferEndpoints {
  private list: string[];
  private timer: NodeJS.Timeout | undefined;
  private readonly urls: URL[];

  constructor(
    urls: readonly string[],
    private readonly options: { refreshMs: number; logger: Logger; resolve?: Resolver },
  ) {
    this.urls = urls.map((u) => new URL(u));
    // Until the first lookup answers, the names themselves (the Service spreads over pods).
    this.list = this.urls.map((u) => u.href.replace(/\/$/, ''));
  }

  current(): readonly string[] {
    return this.list;
  }

  /** Looks the names up now and then every refreshMs. */
  async start(): Promise<void> {
    await this.refresh();
    if (!this.urls.some(expands)) return;
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const resolve = this.options.resolve ?? systemResolver;
    const next: string[] = [];
    for (const url of this.urls) {
      if (!expands(url)) {
        next.push(url.href.replace(/\/$/, ''));
        continue;
      }
      try {
        const addresses = await resolve(url.hostname);
        // A name that resolves to nothing keeps its last addresses: DNS hiccups are no reason to drop replicas.
        if (addresses.length === 0) next.push(...this.list.filter((e) => this.belongsTo(e, url)));
        else next.push(...addresses.map((a) => withAddress(url, a)));
      } catch (err) {
        this.options.logger.warn({ host: url.hostname, reason: err instanceof Error ? err.message : String(err) }, 'infer endpoints: lookup failed; keeping the last ones');
        const kept = this.list.filter((e) => this.belongsTo(e, url));
        next.push(...(kept.length ? kept : [url.href.replace(/\/$/, '')]));
      }
    }
    const unique = [...new Set(next)].sort();
    if (unique.join() !== [...this.list].sort().join()) this.options.logger.info({ endpoints: unique }, 'infer endpoints changed');
    this.list = unique;
  }

  private belongsTo(endpoint: string, url: URL): boolean {
    const e = new URL(endpoint);
    return e.protocol === url.protocol && e.port === url.port;
  }
}
