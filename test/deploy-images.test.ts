/**
 * The container files under deploy/, checked without a container engine: each Dockerfile
 * copies files that exist and that .dockerignore lets through, compiles what the service's
 * tsconfig needs, installs production dependencies of the right workspaces only, runs as a
 * numeric non-root user, starts `node <compiled entry point>` directly (signals reach it),
 * exposes and health-checks the port the code listens on; no test code reaches an image;
 * docker-compose.yml wires the same services with variables the code reads.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { CodeFacts, PORT_VARIABLE, SERVICES, type ServiceName } from './support/deploy/code-facts.js';
import { copies, dockerIgnored, envPairs, execForm, parseDockerfile, type Dockerfile } from './support/deploy/dockerfile.js';
import { ImageFiles, testCodeProblem } from './support/deploy/image-files.js';
import { isObject, parseYamlDocuments } from './support/deploy/kustomize.js';

const code = new CodeFacts(repoRoot);
const ignoreText = readFileSync(join(repoRoot, '.dockerignore'), 'utf8');
const rootPackage = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[]; engines?: { node?: string } };
/** Workspaces for tests, benchmarks and developer CLIs: never in an image, not even their manifest. */
const DEV_WORKSPACES = ['testkit', 'tools'];
const shippedWorkspaces = rootPackage.workspaces.filter((w) => !DEV_WORKSPACES.includes(w));
const imageFiles = new ImageFiles(repoRoot, ignoreText);

function dockerfile(service: ServiceName): Dockerfile {
  return parseDockerfile(readFileSync(join(repoRoot, 'deploy', service, 'Dockerfile'), 'utf8'));
}

/** Files a `tsc -b <project>` build reads: tsconfigs (extends, references) and included folders. */
function tscInputs(project: string, seen = new Set<string>()): string[] {
  const file = project.endsWith('.json') ? project : posix.join(project, 'tsconfig.json');
  if (seen.has(file)) return [];
  seen.add(file);
  const config = JSON.parse(readFileSync(join(repoRoot, file), 'utf8')) as { extends?: string; include?: string[]; references?: { path: string }[] };
  const dir = posix.dirname(file);
  const out = [file];
  if (config.extends) out.push(...tscInputs(posix.normalize(posix.join(dir, config.extends)), seen));
  for (const include of config.include ?? []) out.push(posix.normalize(posix.join(dir, include.replace(/\/\*\*.*$/, ''))));
  for (const ref of config.references ?? []) out.push(...tscInputs(posix.normalize(posix.join(dir, ref.path)), seen));
  return out;
}

test('.dockerignore keeps dependencies, build output, git data and secrets out of the context', () => {
  for (const path of ['node_modules', 'services/infer/node_modules', 'shared/dist', 'services/relay/dist', '.git', 'deploy/k8s/overlays/prod/tokens.env', '.env', 'testkit', 'tools', 'test', 'bench', 'services/infer/src/models/entry-names.test.ts', 'shared/src/process.test.ts']) {
    assert.ok(dockerIgnored(ignoreText, path), `.dockerignore lets ${path} into the build context`);
  }
  for (const path of ['package.json', 'package-lock.json', '.npmrc', 'shared/src/errors.ts', 'services/infer/src/main.ts']) {
    assert.ok(!dockerIgnored(ignoreText, path), `.dockerignore keeps ${path} out, but the images need it`);
  }
});

for (const service of SERVICES) {
  describe(`deploy/${service}/Dockerfile`, () => {
    test('multi-stage on a Debian Node image that satisfies the engines field', () => {
      const file = dockerfile(service);
      assert.ok(file.stages.length >= 2, 'a build stage and a runtime stage');
      for (const stage of file.stages) {
        assert.match(stage.from, /^node:(\d+)-(bookworm|bullseye|trixie)(-slim)?$/, `stage ${stage.name ?? ''} starts from ${stage.from}: sharp and onnxruntime need a glibc (Debian) image`);
        const major = Number(/^node:(\d+)/.exec(stage.from)![1]);
        const needed = Number(/(\d+)/.exec(rootPackage.engines?.node ?? '0')![1]);
        assert.ok(major >= needed, `node ${major} is older than the engines field (${rootPackage.engines?.node})`);
      }
    });

    test('copies files that exist and that the build context holds', () => {
      const file = dockerfile(service);
      const stageNames = new Set(file.stages.map((s) => s.name).filter(Boolean));
      for (const stage of file.stages) {
        for (const copy of copies(stage)) {
          if (copy.from) {
            assert.ok(stageNames.has(copy.from), `line ${copy.line}: --from=${copy.from} is no stage`);
            const build = file.stages.find((s) => s.name === copy.from)!;
            const workdir = build.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '/';
            for (const source of copy.sources) {
              const inRepo = posix.relative(workdir, source);
              assert.ok(!inRepo.startsWith('..') && inRepo.endsWith('dist'), `line ${copy.line}: only compiled output comes from the build stage (${source})`);
              assert.ok(existsSync(join(repoRoot, inRepo, '..', 'tsconfig.json')), `line ${copy.line}: ${inRepo} is not the output of a TypeScript project`);
            }
            continue;
          }
          for (const source of copy.sources) {
            assert.ok(!/[*?[]/.test(source), `line ${copy.line}: name files explicitly (${source})`);
            assert.ok(existsSync(join(repoRoot, source)), `line ${copy.line}: COPY ${source}: no such file in the repository`);
            assert.ok(!dockerIgnored(ignoreText, source), `line ${copy.line}: COPY ${source}, but .dockerignore keeps it out of the context`);
          }
        }
      }
    });

    test('the build stage has every file its tsc -b reads, and each npm ci has every workspace manifest', () => {
      const file = dockerfile(service);
      for (const stage of file.stages) {
        const copied = copies(stage).filter((c) => !c.from).flatMap((c) => c.sources.map((s) => s.replace(/\/+$/, '')));
        const covered = (path: string) => copied.some((c) => path === c || path.startsWith(`${c}/`));
        for (const run of stage.instructions.filter((i) => i.keyword === 'RUN')) {
          for (const m of run.args.matchAll(/tsc -b ([\w./-]+)/g)) {
            const missing = tscInputs(m[1]!).filter((p) => !covered(p));
            assert.deepEqual(missing, [], `tsc -b ${m[1]} reads files the stage does not copy`);
          }
          if (/npm ci/.test(run.args)) {
            for (const path of ['package.json', 'package-lock.json', '.npmrc', ...shippedWorkspaces.map((w) => `${w}/package.json`)]) {
              assert.ok(covered(path), `npm ci runs before ${path} is copied (stage ${stage.name ?? ''})`);
            }
          }
        }
      }
    });

    test('runtime: production dependencies of its own workspaces, non-root, node as PID 1 on the compiled entry point', () => {
      const file = dockerfile(service);
      const runtime = file.stages.at(-1)!;
      const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
      const install = runs.find((r) => /npm ci/.test(r));
      assert.ok(install && /--omit=dev/.test(install), 'the runtime stage installs with npm ci --omit=dev');
      const workspaces = [...install.matchAll(/(?:-w|--workspace)[= ](\S+)/g)].map((m) => m[1]);
      assert.deepEqual(workspaces.sort(), ['shared', `services/${service}`].sort(), 'only the service and shared are installed');
      assert.ok(!runs.some((r) => /\btsc\b|npm (install|i) /.test(r)), 'no compiler and no unlocked install in the runtime stage');

      const pkg = JSON.parse(readFileSync(join(repoRoot, 'services', service, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      for (const dep of Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@detector-worker/'))) {
        assert.ok(workspaces.includes(dep.replace('@detector-worker/', '')), `${dep} is a dependency of ${service} but its workspace is not installed`);
      }

      const user = runtime.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args;
      assert.ok(user && /^[1-9]\d*(:\d+)?$/.test(user), `USER must be a numeric non-root uid (Kubernetes verifies runAsNonRoot with it), got ${user}`);

      const workdir = runtime.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args;
      assert.equal(workdir, '/app');
      const cmd = runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1);
      assert.ok(cmd, 'CMD is set');
      const argv = execForm(cmd.args);
      assert.ok(argv, 'CMD in exec form: no shell between the runtime and node, so SIGTERM reaches the service');
      assert.ok(!runtime.instructions.some((i) => i.keyword === 'ENTRYPOINT'), 'no ENTRYPOINT wraps node');
      const entry = code.entryPoint(service);
      assert.deepEqual(argv, ['node', entry.compiled]);
      assert.ok(existsSync(join(repoRoot, entry.source)), `${entry.source} (the source of ${entry.compiled}) exists`);
      const copiedDist = copies(runtime).filter((c) => c.from).map((c) => posix.relative(workdir, c.destination.startsWith('/') ? c.destination : posix.join(workdir, c.destination)).replace(/\/+$/, ''));
      assert.ok(copiedDist.some((d) => entry.compiled.startsWith(`${d}/`)), `${entry.compiled} is not copied from the build stage`);
    });

    test('the image holds no test code: nothing from testkit, tools, test or bench, no *.test.* file, no import of them', () => {
      const file = dockerfile(service);
      const files = imageFiles.stage(file, -1);
      const paths = files.map((f) => f.path);
      // The list is the real one: the entry point, shared code and the manifests are in it.
      for (const expected of [code.entryPoint(service).compiled, 'shared/dist/errors.js', 'package-lock.json', `services/${service}/package.json`]) {
        assert.ok(paths.includes(expected), `${expected} is missing from the computed file list of the ${service} image`);
      }
      const problems = files.map((f) => testCodeProblem(repoRoot, f)).filter((p): p is string => p !== undefined);
      assert.deepEqual(problems, [], `the ${service} image would hold test code`);
      // Not vacuous: the service has unit tests beside its code, and the context leaves them out.
      const beside = readdirSync(join(repoRoot, 'services', service, 'src'), { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.test.ts'));
      assert.ok(beside.length > 0, `services/${service}/src has unit tests`);
      assert.deepEqual(imageFiles.contextFiles(`services/${service}/src`).filter((p) => p.endsWith('.test.ts')), [], '.dockerignore keeps tests out of the build context');
    });

    test('exposes, health-checks and configures what the code reads', () => {
      const runtime = dockerfile(service).stages.at(-1)!;
      const env = envPairs(runtime);
      for (const name of Object.keys(env)) assert.ok(code.readsEnv(service, name), `ENV ${name} is never read by services/${service}/src or shared/src`);
      const port = Number(env[PORT_VARIABLE[service]] ?? code.envDefault(service, PORT_VARIABLE[service]));
      assert.equal(port, Number(code.envDefault(service, PORT_VARIABLE[service])), 'the image keeps the code\'s default port');
      const exposed = runtime.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
      assert.deepEqual(exposed, [port]);
      const health = runtime.instructions.find((i) => i.keyword === 'HEALTHCHECK');
      assert.ok(health, 'HEALTHCHECK is set');
      const argv = execForm(health.args.replace(/^(--\S+\s+)*CMD\s+/, ''));
      assert.ok(argv && argv[0] === 'node', 'the health check runs node (slim images have no curl)');
      const script = argv.join(' ');
      const path = /\/(healthz|readyz)\b/.exec(script)?.[0];
      assert.ok(path && code.hasGetRoute(service, path), `the health check asks ${path}, which is a route of ${service}`);
      assert.ok(script.includes(PORT_VARIABLE[service]) && script.includes(String(port)), 'the health check follows the port variable');
      if (env.MODEL_CACHE_DIR) assert.ok(runtime.instructions.some((i) => i.keyword === 'RUN' && i.args.includes(posix.dirname(env.MODEL_CACHE_DIR!)) && /chown/.test(i.args)), 'the model cache folder belongs to the service user');
      if (service === 'relay') assert.ok(runtime.instructions.some((i) => i.keyword === 'RUN' && /apt-get install[^&]*\bffmpeg\b/.test(i.args)), 'the relay image installs Debian\'s ffmpeg');
    });
  });
}

describe('deploy/docker-compose.yml', () => {
  const composePath = join(repoRoot, 'deploy', 'docker-compose.yml');
  const compose = parseYamlDocuments(readFileSync(composePath, 'utf8'), 'deploy/docker-compose.yml')[0] as { services: Record<string, Record<string, unknown>>; volumes?: Record<string, unknown> };

  test('runs relay, infer, redis and postgres', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['infer', 'postgres', 'redis', 'relay']);
  });

  for (const service of SERVICES) {
    test(`${service}: built from its Dockerfile with the repository as context, environment the code reads, its port published`, () => {
      const spec = compose.services[service]!;
      const build = spec.build as { context: string; dockerfile: string };
      const context = resolve(repoRoot, 'deploy', build.context);
      assert.equal(context, resolve(repoRoot), 'the build context is the repository root');
      assert.equal(build.dockerfile, `deploy/${service}/Dockerfile`);
      assert.ok(existsSync(join(context, build.dockerfile)));
      const env = (isObject(spec.environment) ? spec.environment : {}) as Record<string, string>;
      const unread = Object.keys(env).filter((name) => !code.readsEnv(service, name));
      assert.deepEqual(unread, [], `variables the ${service} code never reads`);
      const port = String(env[PORT_VARIABLE[service]] ?? code.envDefault(service, PORT_VARIABLE[service]));
      const published = (spec.ports as string[]).map((p) => p.split(':').at(-1));
      assert.ok(published.includes(port), `${service} listens on ${port} but publishes ${published.join(', ')}`);
      if (env.MODEL_CACHE_DIR) {
        const volumes = (spec.volumes as string[]).map((v) => v.split(':'));
        assert.ok(volumes.some(([, target]) => env.MODEL_CACHE_DIR!.startsWith(target!)), 'the model cache is a volume');
      }
    });
  }

  test('the relay reaches infer by its compose service name and port', () => {
    const relayEnv = compose.services.relay!.environment as Record<string, string>;
    const inferEnv = compose.services.infer!.environment as Record<string, string>;
    const url = new URL(relayEnv.INFER_URL!);
    assert.equal(url.hostname, 'infer');
    assert.equal(url.port, String(inferEnv.INFER_PORT ?? code.envDefault('infer', 'INFER_PORT')));
    assert.ok(JSON.stringify(compose.services.relay!.depends_on).includes('infer'));
  });
});
