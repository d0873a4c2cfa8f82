/**
 * Kubernetes schema checks for rendered objects, from the `kubernetes-models` package:
 * - its validators (compiled from the Kubernetes OpenAPI schemas) check types, required
 *   fields, enums and formats;
 * - its type declarations, through the TypeScript checker, refuse unknown fields (a typo such
 *   as `readinesProbe` passes the OpenAPI schemas, which allow extra properties, but a cluster
 *   with strict field validation refuses it, or worse, silently drops the probe).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import ts from 'typescript';
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
 * index, the fields TypeScript refuses (unknown names, wrong shapes).
 */
export function unknownFieldProblems(objects: K8sObject[], repoRoot: string): Map<number, string[]> {
  const sources = new Map<string, { index: number; text: string }>();
  objects.forEach((object, index) => {
    // Virtual files inside the repository so `kubernetes-models` resolves from its node_modules.
    const file = join(repoRoot, 'test', '.k8s-typecheck', `object-${index}.ts`);
    const text = `import type { I${object.kind} } from '${modelModule(object)}';\nexport const object: I${object.kind} = ${JSON.stringify(object, null, 2)};\n`;
    sources.set(file, { index, text });
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => sources.has(f) || fileExists.call(host, f);
  host.readFile = (f) => sources.get(f)?.text ?? readFile.call(host, f);
  host.getSourceFile = (f, language, onError, create) => {
    const virtual = sources.get(f);
    return virtual ? ts.createSourceFile(f, virtual.text, language) : getSourceFile.call(host, f, language, onError, create);
  };
  host.getCurrentDirectory = () => repoRoot;
  const program = ts.createProgram([...sources.keys()], options, host);
  const problems = new Map<number, string[]>();
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const source = diagnostic.file ? sources.get(diagnostic.file.fileName) : undefined;
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    if (!source || !diagnostic.file) throw new Error(`type check of the manifests failed outside an object: ${message}`);
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const near = source.text.split('\n')[line]?.trim() ?? '';
    const list = problems.get(source.index) ?? [];
    list.push(`${message} (at ${near})`);
    problems.set(source.index, list);
  }
  return problems;
}
