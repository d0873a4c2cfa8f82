/**
 * What the services say, for checking the deployment files against it: the environment
 * variables each service reads and their defaults (its env schema, imported from the built
 * service), its HTTP routes and metrics (read from services/<name>/src and shared/src, tests
 * left out; test helpers live in testkit/, outside both), its entry point. A renamed variable
 * or route fails the deploy tests instead of a rollout.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { InferEnv } from '@detector-worker/infer/config';
import { RELAY_CONFIG_FILE_KEYS, RelayEnv } from '@detector-worker/relay/config';

export type ServiceName = 'infer' | 'relay';
export const SERVICES: ServiceName[] = ['infer', 'relay'];

/** The variable that sets each service's listening port. */
export const PORT_VARIABLE: Record<ServiceName, string> = { infer: 'INFER_PORT', relay: 'RELAY_PORT' };

/** Each service's environment schema, from the built service: the variables it reads and their defaults. */
const ENV_SCHEMAS: Record<ServiceName, TObject> = { infer: InferEnv, relay: RelayEnv };

/** The keys the relay reads from its RELAY_CONFIG file. */
export const RELAY_FILE_KEYS: readonly string[] = RELAY_CONFIG_FILE_KEYS;

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts') && !name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class CodeFacts {
  private readonly sources = new Map<ServiceName, string>();

  constructor(readonly repoRoot: string) {}

  /** Source text of a service and of shared (without tests). */
  source(service: ServiceName): string {
    let text = this.sources.get(service);
    if (text === undefined) {
      text = [...tsFiles(join(this.repoRoot, 'services', service, 'src')), ...tsFiles(join(this.repoRoot, 'shared', 'src'))].map((f) => readFileSync(f, 'utf8')).join('\n');
      this.sources.set(service, text);
    }
    return text;
  }

  /** Whether the service reads the variable: it is in the service's schema. */
  readsEnv(service: ServiceName, name: string): boolean {
    return Object.hasOwn(ENV_SCHEMAS[service].properties, name);
  }

  /** The variable's default in the service's schema, as text; undefined when it has none or it is computed (INFER_WORKERS). */
  envDefault(service: ServiceName, name: string): string | undefined {
    const value = (ENV_SCHEMAS[service].properties[name] as { default?: unknown } | undefined)?.default;
    return value === undefined ? undefined : String(value);
  }

  /** Whether the service registers a GET route with exactly this path. */
  hasGetRoute(service: ServiceName, path: string): boolean {
    return new RegExp(`\\.get\\s*(<[^(]*>)?\\(\\s*(['"\`])${escape(path)}\\2`).test(this.source(service));
  }

  /** Whether the service registers a Prometheus metric of this name (a string literal in its source). */
  registersMetric(service: ServiceName, metric: string): boolean {
    return new RegExp(`(['"\`])${escape(metric)}\\1`).test(this.source(service));
  }

  /**
   * The compiled entry point (relative to the repository root: the package's `main`) and the
   * source file tsc compiles it from (outDir -> rootDir of the service's tsconfig).
   */
  entryPoint(service: ServiceName): { compiled: string; source: string } {
    const dir = `services/${service}`;
    const pkg = JSON.parse(readFileSync(join(this.repoRoot, dir, 'package.json'), 'utf8')) as { main?: string };
    const tsconfig = JSON.parse(readFileSync(join(this.repoRoot, dir, 'tsconfig.json'), 'utf8')) as { compilerOptions?: { rootDir?: string; outDir?: string } };
    const main = (pkg.main ?? 'index.js').replace(/^\.\//, '');
    const outDir = (tsconfig.compilerOptions?.outDir ?? '.').replace(/^\.\//, '').replace(/\/$/, '');
    const rootDir = (tsconfig.compilerOptions?.rootDir ?? '.').replace(/^\.\//, '').replace(/\/$/, '');
    if (!main.startsWith(`${outDir}/`)) throw new Error(`${dir}/package.json main ${main} is not under the tsconfig outDir ${outDir}`);
    const source = `${rootDir}/${main.slice(outDir.length + 1)}`.replace(/\.js$/, '.ts');
    return { compiled: `${dir}/${main}`, source: `${dir}/${source}` };
  }
}
