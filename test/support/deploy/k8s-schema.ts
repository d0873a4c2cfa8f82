/**
 * Kubernetes schema checks for rendered objects, from the `kubernetes-models` package:
 * - its validators (compiled from the Kubernetes OpenAPI schemas) check types, required
 *   fields, enums and formats;
 * - its type declarations, through the TypeScript checker, refuse unknown fields (a typo such
 *   as `readinesProbe` passes the OpenAPI schemas, which allow extra properties, but a cluster
 *   with strict field validation refuses it, or worse, silently drops the probe).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { K8sObject } from './kustomize.js';

const require = createRequire(import.meta.url);

/** `kubernetes-models/<apiVersion>/<Kind>`: the package lays its models out by API group and version. */
function modelModule(object: K8sObject): string {
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(object.apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(object.kind)) {
    throw new Error(`unexpected apiVersion/kind ${object.apiVersion} ${object.kind}`);
  }
  return `kubernetes-models/${object.apiVersion}/${object.kind}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** Problems the Kubernetes OpenAPI schema finds in one object (empty when valid). */
export function openApiProblems(object: K8sObject): string[] {
  let Model: ModelClass | undefined;
  try {
    Model = (require(modelModule(object)) as Record<string, ModelClass>)[object.kind];
  } catch {
    Model = undefined;
  }
  if (!Model) return [`no Kubernetes schema for ${object.apiVersion} ${object.kind}`];
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (Array.isArray(errors)) return errors.map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
    return [err instanceof Error ? err.message : String(err)];
  }
}

/**
 * Type-checks each object against the package's declaration of its kind; returns, per object
 * index, the fields TypeScript refuses (unknown names, wrong shapes). TypeScript 7 has no
 * compiler API, so the objects are written as files into a throwaway folder inside the
 * repository (so `kubernetes-models` resolves from its node_modules) and checked by `tsc`.
 */
export function unknownFieldProblems(objects: K8sObject[], repoRoot: string): Map<number, string[]> {
  const dir = mkdtempSync(join(repoRoot, 'test', '.k8s-typecheck-'));
  try {
    const sources = new Map<string, { index: number; text: string }>();
    objects.forEach((object, index) => {
      const name = `object-${index}.ts`;
      const text = `import type { I${object.kind} } from '${modelModule(object)}';\nexport const object: I${object.kind} = ${JSON.stringify(object, null, 2)};\n`;
      writeFileSync(join(dir, name), text);
      sources.set(name, { index, text });
    });
    const compilerOptions = {
      strict: true,
      noEmit: true,
      types: [],
      lib: ['es2022'],
      target: 'es2022',
      module: 'esnext',
      moduleResolution: 'bundler',
      skipLibCheck: true,
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: [...sources.keys()] }));
    const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const run = spawnSync(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { encoding: 'utf8', cwd: repoRoot });
    const problems = new Map<number, string[]>();
    const output = `${run.stdout}${run.stderr}`;
    // One diagnostic per line: `path/object-3.ts(12,5): error TS2353: message`.
    for (const line of output.split('\n')) {
      const m = /([^\/\\]+\.ts)\((\d+),\d+\): error TS\d+: (.*)$/.exec(line.trim());
      if (!m) continue;
      const source = sources.get(m[1]!);
      if (!source) throw new Error(`type check of the manifests failed outside an object: ${line}`);
      const near = source.text.split('\n')[Number(m[2]) - 1]?.trim() ?? '';
      const list = problems.get(source.index) ?? [];
      list.push(`${m[3]} (at ${near})`);
      problems.set(source.index, list);
    }
    if (run.status !== 0 && problems.size === 0) throw new Error(`tsc failed without object diagnostics: ${output.slice(0, 2000)}`);
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
