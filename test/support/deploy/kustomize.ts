/**
 * A small kustomize for the deploy tests (no kustomize binary or cluster here). It renders
 * the part of kustomize that deploy/k8s uses: resources (files and folders), namespace,
 * images, replicas, strategic-merge patches (files naming their target by kind and name), and
 * configMapGenerator / secretGenerator (literals, files, envs; create / merge / replace).
 * Any other kustomization field fails the render, so a manifest that starts to need more of
 * kustomize shows up here instead of being rendered wrongly without a word.
 *
 * One known difference: kustomize appends a content hash to generated names and rewrites the
 * references to them; here generated names and references stay as written (they still match).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export interface RenderOptions {
  /**
   * Reads a file that a kustomization names. The default reads the file, or `<file>.example`
   * when only that exists (tokens.env is never committed; its example stands in for it).
   */
  readFile?: (path: string) => string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'replicas', 'patches', 'configMapGenerator', 'secretGenerator']);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass', 'CustomResourceDefinition', 'PriorityClass']);

/** List fields of the Kubernetes types that a strategic merge patch merges item by item. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
};

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function defaultReadFile(path: string): string {
  if (!existsSync(path) && existsSync(`${path}.example`)) return readFileSync(`${path}.example`, 'utf8');
  return readFileSync(path, 'utf8');
}

/** Every YAML document of a file, refusing parse errors and warnings (duplicate keys, tabs, …). */
export function parseYamlDocuments(text: string, file: string): unknown[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
  const out: unknown[] = [];
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${file}: ${problems.map((p) => p.message).join('; ')}`);
    const value: unknown = doc.toJS({ maxAliasCount: 0 });
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function asK8sObject(value: unknown, where: string): K8sObject {
  if (!isObject(value)) throw new Error(`${where}: a resource must be a mapping`);
  const { apiVersion, kind, metadata } = value;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new Error(`${where}: apiVersion and kind are required`);
  if (!isObject(metadata) || typeof metadata.name !== 'string' || metadata.name === '') throw new Error(`${where}: metadata.name is required`);
  return value as unknown as K8sObject;
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`${where} must be a list of strings`);
  return value as string[];
}

function findOne(objects: K8sObject[], kind: string, name: string, where: string): K8sObject {
  const hits = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (hits.length !== 1) throw new Error(`${where}: expected one ${kind} named ${name}, found ${hits.length}`);
  return hits[0]!;
}

/** Strategic merge of `patch` into `base` (maps merge, lists with a merge key merge by it, other lists are replaced). */
export function strategicMerge(base: Json | undefined, patch: Json, field = ''): Json {
  if (isObject(patch)) {
    const out: JsonObject = isObject(base) ? clone(base) : {};
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new Error(`patch directive ${key} is not supported by the test renderer`);
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key], value, key);
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(base)) {
    let key = MERGE_KEYS[field];
    if (field === 'ports') key = patch.every((p) => isObject(p) && 'containerPort' in p) ? 'containerPort' : 'port';
    if (key) {
      const out = clone(base);
      for (const item of patch) {
        const id = isObject(item) ? item[key] : undefined;
        if (id === undefined) throw new Error(`patch item of ${field} lacks its merge key ${key}`);
        const at = out.findIndex((b) => isObject(b) && b[key] === id);
        if (at >= 0) out[at] = strategicMerge(out[at], item, '');
        else out.push(clone(item));
      }
      return out;
    }
  }
  return clone(patch);
}

function literalPairs(entries: string[], where: string): [string, string][] {
  return entries.map((entry) => {
    const at = entry.indexOf('=');
    if (at <= 0) throw new Error(`${where}: "${entry}" is not KEY=VALUE`);
    let value = entry.slice(at + 1);
    if (/^(".*"|'.*')$/.test(value)) value = value.slice(1, -1);
    return [entry.slice(0, at), value];
  });
}

function envFilePairs(text: string, where: string): [string, string][] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return literalPairs(lines, where);
}

function generate(kind: 'ConfigMap' | 'Secret', spec: unknown, dir: string, objects: K8sObject[], read: (p: string) => string): void {
  const where = `${dir} ${kind === 'ConfigMap' ? 'configMapGenerator' : 'secretGenerator'}`;
  if (!isObject(spec) || typeof spec.name !== 'string') throw new Error(`${where}: every generator needs a name`);
  const known = new Set(['name', 'behavior', 'literals', 'files', 'envs', 'type', 'options']);
  for (const key of Object.keys(spec)) if (!known.has(key)) throw new Error(`${where} ${spec.name}: field ${key} is not supported by the test renderer`);
  const pairs: [string, string][] = [
    ...literalPairs(stringList(spec.literals, `${where} literals`), where),
    ...stringList(spec.files, `${where} files`).map((entry): [string, string] => {
      const at = entry.indexOf('=');
      const key = at > 0 ? entry.slice(0, at) : basename(entry);
      return [key, read(resolve(dir, at > 0 ? entry.slice(at + 1) : entry))];
    }),
    ...stringList(spec.envs, `${where} envs`).flatMap((file) => envFilePairs(read(resolve(dir, file)), `${where} ${file}`)),
  ];
  const data: Record<string, string> = {};
  for (const [key, value] of pairs) {
    if (key in data) throw new Error(`${where} ${spec.name}: key ${key} given twice`);
    data[key] = kind === 'Secret' ? Buffer.from(value).toString('base64') : value;
  }
  const behavior = spec.behavior ?? 'create';
  const existing = objects.filter((o) => o.kind === kind && o.metadata.name === spec.name);
  if (behavior === 'create') {
    if (existing.length > 0) throw new Error(`${where}: ${spec.name} exists already (use behavior merge or replace)`);
    const made: K8sObject = { apiVersion: 'v1', kind, metadata: { name: spec.name }, data };
    if (kind === 'Secret') made.type = typeof spec.type === 'string' ? spec.type : 'Opaque';
    objects.push(made);
    return;
  }
  const target = findOne(objects, kind, spec.name, where);
  if (behavior === 'merge') target.data = { ...(isObject(target.data) ? target.data : {}), ...data };
  else if (behavior === 'replace') target.data = data;
  else throw new Error(`${where} ${spec.name}: unknown behavior ${String(behavior)}`);
}

/** The pod template of a workload object, when it has one. */
export function podTemplate(object: K8sObject): JsonObject | undefined {
  const spec = object.spec;
  if (!isObject(spec)) return undefined;
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(object.kind)) return isObject(spec.template) ? spec.template : undefined;
  if (object.kind === 'CronJob' && isObject(spec.jobTemplate) && isObject(spec.jobTemplate.spec) && isObject(spec.jobTemplate.spec.template)) return spec.jobTemplate.spec.template;
  return undefined;
}

function podContainers(object: K8sObject): JsonObject[] {
  const spec = podTemplate(object)?.spec;
  if (!isObject(spec)) return [];
  return [...(Array.isArray(spec.containers) ? spec.containers : []), ...(Array.isArray(spec.initContainers) ? spec.initContainers : [])].filter(isObject);
}

/** Splits `registry:5000/name:tag@sha256:…` into name, tag and digest. */
export function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), ...(digest ? { digest } : {}) };
  return { name: rest, ...(digest ? { digest } : {}) };
}

function setImages(objects: K8sObject[], images: unknown, where: string): void {
  if (images === undefined) return;
  if (!Array.isArray(images)) throw new Error(`${where}: images must be a list`);
  for (const rule of images) {
    if (!isObject(rule) || typeof rule.name !== 'string') throw new Error(`${where}: every image needs a name`);
    let used = false;
    for (const container of objects.flatMap(podContainers)) {
      if (typeof container.image !== 'string') continue;
      const parts = splitImage(container.image);
      if (parts.name !== rule.name) continue;
      used = true;
      const name = typeof rule.newName === 'string' ? rule.newName : parts.name;
      const tag = rule.newTag !== undefined ? String(rule.newTag) : parts.tag;
      const digest = typeof rule.digest === 'string' ? rule.digest : undefined;
      container.image = digest ? `${name}@${digest}` : tag ? `${name}:${tag}` : name;
    }
    if (!used) throw new Error(`${where}: image ${rule.name} is used by no container`);
  }
}

function setReplicas(objects: K8sObject[], replicas: unknown, where: string): void {
  if (replicas === undefined) return;
  if (!Array.isArray(replicas)) throw new Error(`${where}: replicas must be a list`);
  for (const rule of replicas) {
    if (!isObject(rule) || typeof rule.name !== 'string' || typeof rule.count !== 'number') throw new Error(`${where}: replicas need name and count`);
    const hits = objects.filter((o) => ['Deployment', 'StatefulSet', 'ReplicaSet'].includes(o.kind) && o.metadata.name === rule.name);
    if (hits.length !== 1) throw new Error(`${where}: replicas: no single workload named ${rule.name}`);
    (hits[0]!.spec as JsonObject).replicas = rule.count;
  }
}

function applyPatches(objects: K8sObject[], patches: unknown, dir: string, read: (p: string) => string): void {
  if (patches === undefined) return;
  if (!Array.isArray(patches)) throw new Error(`${dir}: patches must be a list`);
  for (const entry of patches) {
    if (!isObject(entry)) throw new Error(`${dir}: a patch must be a mapping`);
    for (const key of Object.keys(entry)) if (key !== 'path' && key !== 'patch') throw new Error(`${dir}: patch field ${key} is not supported by the test renderer`);
    const text = typeof entry.path === 'string' ? read(resolve(dir, entry.path)) : typeof entry.patch === 'string' ? entry.patch : undefined;
    if (text === undefined) throw new Error(`${dir}: a patch needs path or patch`);
    const where = `${dir} patch ${typeof entry.path === 'string' ? entry.path : '(inline)'}`;
    for (const doc of parseYamlDocuments(text, where)) {
      const patch = asK8sObject(doc, where);
      const target = findOne(objects, patch.kind, patch.metadata.name, where);
      if (target.apiVersion !== patch.apiVersion) throw new Error(`${where}: apiVersion ${patch.apiVersion} differs from the target's ${target.apiVersion}`);
      const merged = strategicMerge(target as unknown as Json, patch as unknown as Json) as unknown as K8sObject;
      objects[objects.indexOf(target)] = merged;
    }
  }
}

/** Renders the kustomization in `dir` (a folder holding kustomization.yaml). */
export function renderKustomization(dir: string, options: RenderOptions = {}): K8sObject[] {
  const read = options.readFile ?? defaultReadFile;
  const file = join(dir, 'kustomization.yaml');
  const docs = parseYamlDocuments(read(file), file);
  const k = docs[0];
  if (docs.length !== 1 || !isObject(k)) throw new Error(`${file}: expected one mapping`);
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') throw new Error(`${file}: apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization`);
  for (const key of Object.keys(k)) if (!SUPPORTED_FIELDS.has(key)) throw new Error(`${file}: field ${key} is not supported by the test renderer`);

  const objects: K8sObject[] = [];
  for (const entry of stringList(k.resources, `${file} resources`)) {
    const path = resolve(dir, entry);
    if (existsSync(path) && statSync(path).isDirectory()) objects.push(...renderKustomization(path, options));
    else objects.push(...parseYamlDocuments(read(path), path).map((d, i) => asK8sObject(d, `${path} document ${i + 1}`)));
  }
  for (const spec of Array.isArray(k.configMapGenerator) ? k.configMapGenerator : []) generate('ConfigMap', spec, dir, objects, read);
  for (const spec of Array.isArray(k.secretGenerator) ? k.secretGenerator : []) generate('Secret', spec, dir, objects, read);
  applyPatches(objects, k.patches, dir, read);
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string') throw new Error(`${file}: namespace must be a string`);
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  setImages(objects, k.images, file);
  setReplicas(objects, k.replicas, file);
  return objects;
}
