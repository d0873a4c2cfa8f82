/**
 * Reading rendered Kubernetes objects the way the cluster will: which Deployment runs which
 * service, the environment a container ends up with (env over envFrom, ConfigMap and Secret
 * values looked up), named ports, label selectors.
 */
import { isObject, podTemplate, type K8sObject } from './kustomize.js';
import type { ServiceName } from './code-facts.js';

// Rendered objects are plain JSON: these views name the fields the tests read.
export interface Container {
  name: string;
  image?: string;
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }[];
  envFrom?: { configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Probe {
  httpGet?: { path?: string; port: number | string };
  [key: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; emptyDir?: Record<string, unknown>; configMap?: { name: string }; secret?: { secretName: string } }[];
  securityContext?: Record<string, unknown> & { seccompProfile?: { type?: string } };
  terminationGracePeriodSeconds?: number;
  enableServiceLinks?: boolean;
  automountServiceAccountToken?: boolean;
}

export interface EnvValue {
  /** Where the value comes from. */
  from: 'value' | 'configMap' | 'secret' | 'other';
  /** The value, when the rendered objects hold it. */
  value?: string;
}

export function podSpec(object: K8sObject): PodSpec {
  const spec = podTemplate(object)?.spec;
  if (!isObject(spec)) throw new Error(`${object.kind} ${object.metadata.name} has no pod spec`);
  return spec as unknown as PodSpec;
}

export function podLabels(object: K8sObject): Record<string, string> {
  const metadata = podTemplate(object)?.metadata;
  return (isObject(metadata) && isObject(metadata.labels) ? metadata.labels : {}) as Record<string, string>;
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

export function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The Deployment running a service: named after it, with a container of that name. */
export function serviceWorkload(objects: K8sObject[], service: ServiceName): { deployment: K8sObject; pod: PodSpec; container: Container } {
  const deployment = find(objects, 'Deployment', service);
  if (!deployment) throw new Error(`no Deployment named ${service}`);
  const pod = podSpec(deployment);
  const container = pod.containers.find((c) => c.name === service);
  if (!container) throw new Error(`Deployment ${service} has no container named ${service}`);
  return { deployment, pod, container };
}

function configData(objects: K8sObject[], kind: 'ConfigMap' | 'Secret', name: string): Record<string, string> | undefined {
  const object = find(objects, kind, name);
  if (!object) return undefined;
  const data = (isObject(object.data) ? object.data : {}) as Record<string, string>;
  if (kind === 'ConfigMap') return data;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

/** The environment the container gets: envFrom sources first, then env entries, which win. */
export function containerEnv(objects: K8sObject[], container: Container): Map<string, EnvValue> {
  const out = new Map<string, EnvValue>();
  for (const source of container.envFrom ?? []) {
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const ref = source.configMapRef ?? source.secretRef;
    if (!ref) continue;
    const data = configData(objects, kind, ref.name);
    if (!data) throw new Error(`container ${container.name}: envFrom ${kind} ${ref.name} does not exist`);
    for (const [key, value] of Object.entries(data)) out.set(key, { from: kind === 'ConfigMap' ? 'configMap' : 'secret', value });
  }
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) out.set(entry.name, { from: 'value', value: entry.value });
    else if (entry.valueFrom?.configMapKeyRef || entry.valueFrom?.secretKeyRef) {
      const kind = entry.valueFrom.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const ref = (entry.valueFrom.configMapKeyRef ?? entry.valueFrom.secretKeyRef) as { name: string; key: string };
      const value = configData(objects, kind, ref.name)?.[ref.key];
      out.set(entry.name, { from: kind === 'ConfigMap' ? 'configMap' : 'secret', ...(value !== undefined ? { value } : {}) });
    } else out.set(entry.name, { from: 'other' });
  }
  return out;
}

/** A probe's or Service's port: a number, or the name of one of the container's ports. */
export function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Kubernetes CPU quantity in cores ("500m" -> 0.5, "2" -> 2). */
export function cpuCores(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  if (typeof quantity === 'number') return quantity;
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  if (!m) return undefined;
  return m[2] === 'm' ? Number(m[1]) / 1000 : Number(m[1]);
}
