/**
 * Which archive URLs may be fetched, on the first request and on every redirect hop: http,
 * https, and file:// only when enabled (never from a redirect); hosts on MODEL_URL_ALLOW
 * when it is set. Credentials in a URL become Basic auth for their own origin only and never
 * appear in messages.
 */
import { redactUrl } from '@detector-worker/shared/logging';
import { coded } from '../error-codes.js';

/** Parses and vets the scheme; the result never carries credentials into messages. */
export function parseArchiveUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw coded('MODEL_URL_INVALID', `model URL is not a valid URL: ${truncate(redactUrl(String(url)))}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && parsed.protocol !== 'file:') {
    throw coded('MODEL_URL_INVALID', `model URL scheme ${parsed.protocol} is not supported (use http, https or file)`, { url: redactUrl(url) });
  }
  return parsed;
}

/**
 * Whether the URL's host is on the allow-list. Entries: `host`, `host:port`, `*.domain`,
 * `*.domain:port`, `[v6]`, `[v6]:port`. A wildcard matches subdomains only, not the domain
 * itself. An entry without a port matches every port.
 */
export function isHostAllowed(url: URL, allowedHosts: readonly string[] | undefined): boolean {
  if (!allowedHosts || allowedHosts.length === 0) return true;
  const host = normaliseHost(url.hostname);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return allowedHosts.some((raw) => {
    const entry = parseHostEntry(raw);
    if (!entry) return false;
    if (entry.port !== undefined && entry.port !== port) return false;
    if (entry.host.startsWith('*.')) {
      const suffix = entry.host.slice(1);
      return host.endsWith(suffix) && host.length > suffix.length;
    }
    return host === entry.host;
  });
}

function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function parseHostEntry(raw: string): { host: string; port?: number } | undefined {
  const text = raw.trim().toLowerCase();
  if (!text) return undefined;
  let host = text;
  let portText: string | undefined;
  const bracketed = /^(\[[^\]]+\])(?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (text.split(':').length === 2) {
    [host, portText] = text.split(':') as [string, string];
  } else if (text.includes(':')) {
    host = `[${text}]`; // a bare IPv6 address; URL.hostname keeps the brackets
  }
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) return undefined;
  return port === undefined ? { host: normaliseHost(host) } : { host: normaliseHost(host), port };
}

export function checkHostAllowed(url: URL, allowedHosts: readonly string[] | undefined): void {
  if (!isHostAllowed(url, allowedHosts)) {
    throw coded('MODEL_URL_FORBIDDEN', `model host ${url.host} is not in the allowed hosts`, { url: redactUrl(url.href) });
  }
}

export function basicAuth(url: URL): string | undefined {
  if (!url.username && !url.password) return undefined;
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text; // a stray % that is not an escape
    }
  };
  const user = decode(url.username);
  const pass = decode(url.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

export function withoutCredentials(url: URL): URL {
  if (!url.username && !url.password) return url;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy;
}

function truncate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
