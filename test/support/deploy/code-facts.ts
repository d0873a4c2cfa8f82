/**
 * What the services' source says, for checking the deployment files against it: the
 * environment variables each service reads, their defaults, its HTTP routes, its entry point.
 * Read from services/<name>/src and shared/src (tests and test helpers left out), so a
 * renamed variable or route fails the deploy tests instead of a rollout.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export type ServiceName = 'infer' | 'relay';
export const SERVICES: ServiceName[] = ['infer', 'relay'];

/** The variable that sets each service's listening port. */
export const PORT_VARIABLE: Record<ServiceName, string> = { infer: 'INFER_PORT', relay: 'RELAY_PORT' };

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

  /** Source text of a service and of shared (without test helpers). */
  source(service: ServiceName): string {
    let text = this.sources.get(service);
    if (text === undefined) {
      const shared = tsFiles(join(this.repoRoot, 'shared', 'src')).filter((f) => !relative(this.repoRoot, f).split(/[\\/]/).includes('testing'));
      text = [...tsFiles(join(this.repoRoot, 'services', service, 'src')), ...shared].map((f) => readFileSync(f, 'utf8')).join('\n');
      this.sources.set(service, text);
    }
    return text;
  }

  configSource(service: ServiceName): string {
    return readFileSync(join(this.repoRoot, 'services', service, 'src', 'config.ts'), 'utf8');
  }

  /** Whether the service reads the variable: `'NAME'` passed to an env helper, or `env.NAME`. */
  readsEnv(service: ServiceName, name: string): boolean {
    const n = escape(name);
    return new RegExp(`(['"\`])${n}\\1|\\benv\\.${n}\\b|\\benv\\[\\s*(['"\`])${n}\\2\\s*\\]`).test(this.source(service));
  }

  /** The default a config.ts helper call gives the variable (`envInt(env, 'NAME', 8080, …)`), as text. */
  envDefault(service: ServiceName, name: string): string | undefined {
    const match = new RegExp(`\\(\\s*\\w+\\s*,\\s*'${escape(name)}'\\s*,\\s*([^,)]+)`).exec(this.configSource(service));
    if (!match) return undefined;
    const raw = match[1]!.trim();
    if (/^-?[\d_]+(\.\d+)?$/.test(raw)) return raw.replace(/_/g, '');
    if (/^'[^']*'$/.test(raw)) return raw.slice(1, -1);
    return undefined;
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
