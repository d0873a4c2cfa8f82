/**
 * The Kubernetes manifests under deploy/k8s, checked without a cluster: every YAML file parses,
 * the base and each overlay render (a small kustomize in test/support/deploy), every rendered
 * object is valid for Kubernetes (OpenAPI schema and no unknown fields), references between
 * objects resolve, pods run under the restricted profile, and the manifests agree with the
 * code: ports, probe paths, environment variable names, the HPA's metric, the shutdown deadline.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { CodeFacts, PORT_VARIABLE, RELAY_FILE_KEYS, SERVICES, type ServiceName } from './support/deploy/code-facts.js';
import { isObject, parseYamlDocuments, renderKustomization, splitImage, type K8sObject } from './support/deploy/kustomize.js';
import { openApiProblems, unknownFieldProblems } from './support/deploy/k8s-schema.js';
import { containerEnv, cpuCores, find, ofKind, podLabels, podSpec, resolvePort, selectorMatches, serviceWorkload, type Container } from './support/deploy/workloads.js';

const deployDir = join(repoRoot, 'deploy');
const k8sDir = join(deployDir, 'k8s');
const code = new CodeFacts(repoRoot);

const RENDERS = { base: join(k8sDir, 'base'), dev: join(k8sDir, 'overlays', 'dev'), prod: join(k8sDir, 'overlays', 'prod') } as const;
type RenderName = keyof typeof RENDERS;
const rendered = new Map<RenderName, K8sObject[]>();
function render(name: RenderName): K8sObject[] {
  let objects = rendered.get(name);
  if (!objects) {
    objects = renderKustomization(RENDERS[name]);
    rendered.set(name, objects);
  }
  // Each test gets its own copy: a test must not see another's changes.
  return structuredClone(objects);
}

function id(object: K8sObject): string {
  return `${object.kind} ${object.metadata.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata.name}`;
}

function filesUnder(dir: string, suffixes: string[]): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, suffixes));
    else if (suffixes.some((s) => name.endsWith(s))) out.push(path);
  }
  return out.sort();
}

function labelSelector(object: K8sObject, path: string[]): Record<string, string> | undefined {
  let at: unknown = object;
  for (const key of path) at = isObject(at) ? at[key] : undefined;
  return isObject(at) ? (at as Record<string, string>) : undefined;
}

/** The port the service listens on in this container: its port variable, else the code's default. */
function listeningPort(objects: K8sObject[], service: ServiceName, container: Container): number {
  const variable = PORT_VARIABLE[service];
  const value = containerEnv(objects, container).get(variable)?.value ?? code.envDefault(service, variable);
  assert.ok(value !== undefined, `${service}: no ${variable} in the manifests and no default found in services/${service}/src/config.ts`);
  return Number(value);
}

test('every YAML and JSON file under deploy/ parses', () => {
  const yamlFiles = filesUnder(deployDir, ['.yaml', '.yml']);
  assert.ok(yamlFiles.length >= 15, `expected the manifests under deploy/, found ${yamlFiles.length} YAML files`);
  for (const file of yamlFiles) {
    const docs = parseYamlDocuments(readFileSync(file, 'utf8'), relative(repoRoot, file));
    assert.ok(docs.length > 0, `${relative(repoRoot, file)} holds no document`);
    for (const doc of docs) assert.ok(isObject(doc), `${relative(repoRoot, file)}: every document must be a mapping`);
  }
  for (const file of filesUnder(deployDir, ['.json'])) assert.doesNotThrow(() => JSON.parse(readFileSync(file, 'utf8')), relative(repoRoot, file));
});

test('every file in a kustomization is used by it (no forgotten manifest)', () => {
  for (const dir of Object.values(RENDERS)) {
    const text = readFileSync(join(dir, 'kustomization.yaml'), 'utf8');
    for (const name of readdirSync(dir)) {
      if (name === 'kustomization.yaml' || name.startsWith('.') || statSync(join(dir, name)).isDirectory()) continue;
      const used = name.endsWith('.example') ? text.includes(name.replace(/\.example$/, '')) : text.includes(name);
      assert.ok(used, `${relative(repoRoot, join(dir, name))} is not named in its kustomization.yaml`);
    }
  }
});

test('every rendered object is valid for Kubernetes: OpenAPI schema and no unknown fields', () => {
  const all: { render: RenderName; object: K8sObject }[] = [];
  for (const name of Object.keys(RENDERS) as RenderName[]) for (const object of render(name)) all.push({ render: name, object });
  const problems: string[] = [];
  for (const { render: r, object } of all) for (const p of openApiProblems(object)) problems.push(`${r}: ${id(object)}: ${p}`);
  // One TypeScript program for all objects (the same object in several renders is checked once).
  const unique = new Map<string, { render: RenderName; object: K8sObject }>();
  for (const entry of all) unique.set(JSON.stringify(entry.object), entry);
  const list = [...unique.values()];
  for (const [index, found] of unknownFieldProblems(list.map((e) => e.object), repoRoot)) {
    for (const p of found) problems.push(`${list[index]!.render}: ${id(list[index]!.object)}: ${p}`);
  }
  assert.deepEqual(problems, []);
});

for (const renderName of Object.keys(RENDERS) as RenderName[]) {
  describe(`deploy/k8s ${renderName === 'base' ? 'base' : `overlays/${renderName}`}`, () => {
    test('renders the expected objects once each, in one namespace', () => {
      const objects = render(renderName);
      const ids = objects.map(id);
      assert.deepEqual(ids.filter((x, i) => ids.indexOf(x) !== i), [], 'duplicate objects');
      const kinds = (kind: string) => ofKind(objects, kind).map((o) => o.metadata.name).sort();
      assert.deepEqual(kinds('Deployment'), ['infer', 'relay']);
      assert.deepEqual(kinds('Service'), ['infer', 'infer-headless', 'relay']);
      assert.deepEqual(kinds('HorizontalPodAutoscaler'), ['infer']);
      assert.deepEqual(kinds('PodDisruptionBudget'), ['infer', 'relay']);
      assert.ok(ofKind(objects, 'NetworkPolicy').length >= 1);
      assert.ok(ofKind(objects, 'Secret').length >= 1);
      const namespaces = new Set(objects.filter((o) => o.kind !== 'Namespace').map((o) => o.metadata.namespace));
      assert.equal(namespaces.size, 1, `objects spread over namespaces ${[...namespaces].join(', ')}`);
      if (renderName !== 'base') {
        const namespace = [...namespaces][0];
        assert.ok(namespace, 'an overlay sets the namespace');
        const ns = find(objects, 'Namespace', namespace);
        assert.ok(ns, `overlay ${renderName} creates its Namespace ${namespace}`);
        assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
      }
    });

    test('references between objects resolve', () => {
      const objects = render(renderName);
      for (const workload of ofKind(objects, 'Deployment')) {
        const labels = podLabels(workload);
        assert.ok(selectorMatches(labelSelector(workload, ['spec', 'selector', 'matchLabels']), labels), `${id(workload)}: selector does not match its pod labels`);
        const pod = podSpec(workload);
        const volumes = pod.volumes ?? [];
        for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
          for (const mount of container.volumeMounts ?? []) assert.ok(volumes.some((v) => v.name === mount.name), `${id(workload)}: mount ${mount.name} has no volume`);
          for (const source of container.envFrom ?? []) {
            const ref = source.configMapRef ?? source.secretRef;
            if (ref && !ref.optional) assert.ok(find(objects, source.configMapRef ? 'ConfigMap' : 'Secret', ref.name), `${id(workload)}: envFrom ${ref.name} does not exist`);
          }
          for (const entry of container.env ?? []) {
            for (const [kind, field] of [['ConfigMap', 'configMapKeyRef'], ['Secret', 'secretKeyRef']] as const) {
              const ref = entry.valueFrom?.[field] as { name: string; key: string; optional?: boolean } | undefined;
              if (!ref) continue;
              const target = find(objects, kind, ref.name);
              assert.ok(target, `${id(workload)}: ${entry.name} refers to missing ${kind} ${ref.name}`);
              if (!ref.optional) assert.ok(isObject(target.data) && ref.key in target.data, `${id(workload)}: ${entry.name} refers to missing key ${ref.key} of ${kind} ${ref.name}`);
            }
          }
        }
        for (const volume of volumes) {
          if (volume.configMap) assert.ok(find(objects, 'ConfigMap', volume.configMap.name), `${id(workload)}: volume ${volume.name} names a missing ConfigMap`);
          if (volume.secret) assert.ok(find(objects, 'Secret', volume.secret.secretName), `${id(workload)}: volume ${volume.name} names a missing Secret`);
        }
      }
      const workloads = ofKind(objects, 'Deployment');
      const selects = (selector: Record<string, string> | undefined) => workloads.filter((w) => selectorMatches(selector, podLabels(w)));
      for (const service of ofKind(objects, 'Service')) {
        const selected = selects(labelSelector(service, ['spec', 'selector']));
        assert.equal(selected.length, 1, `${id(service)} selects ${selected.length} Deployments`);
        const container = podSpec(selected[0]!).containers[0]!;
        for (const port of (service.spec as { ports: { port: number; targetPort?: number | string }[] }).ports) {
          const target = resolvePort(container, port.targetPort ?? port.port);
          assert.ok(target !== undefined && container.ports?.some((p) => p.containerPort === target), `${id(service)}: port ${port.port} targets no container port`);
        }
      }
      for (const pdb of ofKind(objects, 'PodDisruptionBudget')) assert.equal(selects(labelSelector(pdb, ['spec', 'selector', 'matchLabels'])).length, 1, `${id(pdb)} selects no single Deployment`);
      for (const policy of ofKind(objects, 'NetworkPolicy')) assert.ok(selects(labelSelector(policy, ['spec', 'podSelector', 'matchLabels'])).length >= 1, `${id(policy)} selects no pods`);
      for (const hpa of ofKind(objects, 'HorizontalPodAutoscaler')) {
        const target = (hpa.spec as { scaleTargetRef: { apiVersion: string; kind: string; name: string } }).scaleTargetRef;
        const workload = find(objects, target.kind, target.name);
        assert.ok(workload && workload.apiVersion === target.apiVersion, `${id(hpa)}: scale target ${target.kind} ${target.name} does not exist`);
        // The HPA owns the replica count: a count in the Deployment would reset it on every apply.
        assert.equal((workload.spec as { replicas?: number }).replicas, undefined, `${id(workload)} is scaled by ${id(hpa)} and must not set replicas`);
      }
    });

    test('pods run restricted: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
      for (const workload of ofKind(render(renderName), 'Deployment')) {
        const pod = podSpec(workload);
        const where = id(workload);
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
        const uid = pod.securityContext?.runAsUser;
        assert.ok(typeof uid === 'number' && uid > 0, `${where}: runAsUser must be a non-zero number`);
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccompProfile`);
        // Service links would put INFER_PORT=tcp://… (from the infer Service) into the environment.
        assert.equal(pod.enableServiceLinks, false, `${where}: enableServiceLinks must be false`);
        assert.equal(pod.automountServiceAccountToken, false, `${where}: no API token is needed`);
        for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
          const sc = container.securityContext ?? {};
          assert.equal(sc.readOnlyRootFilesystem, true, `${where} ${container.name}: readOnlyRootFilesystem`);
          assert.equal(sc.allowPrivilegeEscalation, false, `${where} ${container.name}: allowPrivilegeEscalation`);
          assert.notEqual(sc.privileged, true, `${where} ${container.name}: privileged`);
          assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${where} ${container.name}: capabilities.drop`);
          assert.equal(sc.capabilities?.add, undefined, `${where} ${container.name}: no capability is added`);
          assert.ok(sc.runAsUser === undefined || (typeof sc.runAsUser === 'number' && sc.runAsUser > 0), `${where} ${container.name}: runAsUser`);
          for (const kind of ['requests', 'limits'] as const) {
            for (const resource of ['cpu', 'memory']) assert.ok(container.resources?.[kind]?.[resource] !== undefined, `${where} ${container.name}: resources.${kind}.${resource}`);
          }
          // With a read-only root, /tmp must be a writable emptyDir.
          const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
          assert.ok(tmp && pod.volumes?.find((v) => v.name === tmp.name)?.emptyDir, `${where} ${container.name}: /tmp must be an emptyDir`);
        }
      }
    });

    for (const service of SERVICES) {
      test(`${service}: ports, probes and environment agree with the code`, () => {
        const objects = render(renderName);
        const { deployment, pod, container } = serviceWorkload(objects, service);
        const port = listeningPort(objects, service, container);
        assert.deepEqual(container.ports?.map((p) => p.containerPort), [port], `${service}: the container port must be the port the service listens on`);

        for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
          const probe = container[kind];
          assert.ok(probe?.httpGet, `${service}: ${kind} must be an HTTP probe`);
          const path = probe.httpGet.path ?? '/';
          assert.ok(code.hasGetRoute(service, path), `${service}: ${kind} path ${path} is not a GET route in services/${service}/src`);
          assert.equal(resolvePort(container, probe.httpGet.port), port, `${service}: ${kind} port`);
        }
        assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', `${service}: liveness = alive`);
        assert.equal(container.readinessProbe?.httpGet?.path, '/readyz', `${service}: readiness = ready for work`);

        const env = containerEnv(objects, container);
        const unread = [...env.keys()].filter((name) => !code.readsEnv(service, name));
        assert.deepEqual(unread, [], `${service}: variables set in the manifests that services/${service}/src and shared/src never read`);
        for (const [name, value] of env) {
          if (/TOKEN|PASSWORD|SECRET/.test(name)) assert.equal(value.from, 'secret', `${service}: ${name} must come from a Secret`);
        }
        for (const configMap of ofKind(objects, 'ConfigMap')) {
          for (const key of Object.keys(isObject(configMap.data) ? configMap.data : {})) assert.ok(!/TOKEN|PASSWORD|SECRET/.test(key), `${id(configMap)}: ${key} belongs in a Secret`);
        }

        // SIGTERM -> preStop, then the service's own shutdown deadline: the kubelet must not kill it first.
        // A service without SHUTDOWN_TIMEOUT_MS (the relay so far) gives itself 10 s in main.ts.
        const deadlineMs = Number(env.get('SHUTDOWN_TIMEOUT_MS')?.value ?? code.envDefault(service, 'SHUTDOWN_TIMEOUT_MS') ?? 10_000);
        const preStop = container.lifecycle?.preStop?.exec?.command;
        const preStopSeconds = preStop && preStop[0] === 'sleep' ? Number(preStop[1]) : preStop ? Number.NaN : 0;
        assert.ok(Number.isFinite(preStopSeconds), `${service}: preStop must be a plain sleep`);
        const grace = pod.terminationGracePeriodSeconds ?? 30;
        assert.ok(grace > preStopSeconds + deadlineMs / 1000, `${id(deployment)}: terminationGracePeriodSeconds ${grace} must exceed preStop ${preStopSeconds}s + shutdown deadline ${deadlineMs / 1000}s`);

        const image = splitImage(container.image ?? '');
        assert.ok(image.name.endsWith(`/${service}`), `${service}: image ${container.image} is not the ${service} image`);
      });
    }

    test('infer: Service, HPA on CPU and in-flight requests, NetworkPolicy, model cache, tokens, workers', () => {
      const objects = render(renderName);
      const { pod, container } = serviceWorkload(objects, 'infer');
      const env = containerEnv(objects, container);
      const port = listeningPort(objects, 'infer', container);

      assert.equal(env.get('ALLOW_FILE_MODEL_URLS')?.value, 'false', 'file:// model URLs must be off in Kubernetes');
      assert.ok(env.get('MODEL_URL_ALLOW')?.value, 'MODEL_URL_ALLOW must name the hosts archives come from');
      assert.equal(env.get('INFER_TOKEN')?.from, 'secret');
      assert.ok(env.get('INFER_TOKEN')?.value, 'INFER_TOKEN must not be empty');

      // The model cache: MODEL_CACHE_DIR lies in a writable emptyDir.
      const cacheDir = env.get('MODEL_CACHE_DIR')?.value;
      assert.ok(cacheDir !== undefined && cacheDir.startsWith('/'), 'MODEL_CACHE_DIR must be set to an absolute path');
      const mount = container.volumeMounts?.find((m) => cacheDir === m.mountPath || cacheDir.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
      assert.ok(mount && !mount.readOnly, `MODEL_CACHE_DIR ${cacheDir} is on no writable mount`);
      assert.ok(pod.volumes?.find((v) => v.name === mount.name)?.emptyDir, 'the model cache must be an emptyDir');

      // One onnxruntime thread per CPU of the limit: more would fight over the cores.
      const workers = Number(env.get('INFER_WORKERS')?.value);
      const threads = Number(env.get('ORT_INTRA_OP_THREADS')?.value ?? code.envDefault('infer', 'ORT_INTRA_OP_THREADS') ?? 1);
      assert.ok(workers >= 1, 'INFER_WORKERS must be set: its default is the node\'s core count, not the pod\'s');
      const cpuLimit = cpuCores(container.resources?.limits?.cpu);
      assert.ok(cpuLimit !== undefined && workers * threads <= Math.max(1, cpuLimit), `INFER_WORKERS x ORT_INTRA_OP_THREADS = ${workers * threads} exceeds the CPU limit ${cpuLimit}`);

      const service = find(objects, 'Service', 'infer');
      assert.ok(service);
      assert.notEqual((service.spec as { clusterIP?: string }).clusterIP, 'None', 'infer is load-balanced behind a ClusterIP Service');

      const hpa = find(objects, 'HorizontalPodAutoscaler', 'infer');
      assert.ok(hpa);
      const spec = hpa.spec as { minReplicas?: number; maxReplicas: number; metrics: { type: string; resource?: { name: string }; pods?: { metric: { name: string }; target: { averageValue?: string | number } } }[] };
      assert.ok((spec.minReplicas ?? 1) >= 1 && (spec.minReplicas ?? 1) <= spec.maxReplicas, 'HPA bounds');
      assert.ok(spec.metrics.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu'), 'the HPA scales on CPU');
      assert.ok(container.resources?.requests?.cpu, 'CPU utilisation needs a CPU request');
      for (const metric of spec.metrics.filter((m) => m.type === 'Pods')) {
        const name = metric.pods!.metric.name;
        assert.ok(code.registersMetric('infer', name), `HPA metric ${name} is not registered by services/infer/src`);
        assert.ok(Number(metric.pods!.target.averageValue) >= workers, `HPA ${name} target ${metric.pods!.target.averageValue} is below INFER_WORKERS=${workers}: pods would be added before the workers are busy`);
      }
      if (renderName !== 'dev') assert.ok(spec.metrics.some((m) => m.type === 'Pods' && m.pods?.metric.name === 'infer_requests_in_flight'), 'the HPA scales on requests in flight');

      // Only the relay reaches infer's port (and Prometheus, for /metrics); egress stays open.
      const relayLabels = podLabels(find(objects, 'Deployment', 'relay')!);
      const inferLabels = podLabels(find(objects, 'Deployment', 'infer')!);
      const policies = ofKind(objects, 'NetworkPolicy').filter((p) => selectorMatches(labelSelector(p, ['spec', 'podSelector', 'matchLabels']), inferLabels));
      assert.ok(policies.length >= 1, 'a NetworkPolicy must select the infer pods');
      let relayAllowed = false;
      for (const policy of policies) {
        const ps = policy.spec as { policyTypes?: string[]; ingress?: { from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }[]; ports?: { port?: number | string }[] }[] };
        assert.deepEqual(ps.policyTypes, ['Ingress'], `${id(policy)}: ingress only (infer downloads models and writes to Redis / PostgreSQL)`);
        for (const rule of ps.ingress ?? []) {
          assert.ok(rule.from && rule.from.length > 0, `${id(policy)}: a rule without "from" lets every pod in`);
          assert.ok(rule.ports && rule.ports.length > 0 && rule.ports.every((p) => resolvePort(container, p.port ?? -1) === port), `${id(policy)}: rules must open infer's port ${port} only`);
          assert.ok(rule.from.every((peer) => !peer.ipBlock), `${id(policy)}: no ipBlock peers`);
          if (rule.from.some((peer) => !peer.namespaceSelector && selectorMatches(peer.podSelector?.matchLabels, relayLabels))) relayAllowed = true;
        }
      }
      assert.ok(relayAllowed, 'relay pods must be allowed to reach infer');
    });

    test('relay: headless Service for per-pod CMS connections, INFER_URL at the headless infer Service, config file mounted', () => {
      const objects = render(renderName);
      const { pod, container } = serviceWorkload(objects, 'relay');
      const env = containerEnv(objects, container);

      const service = find(objects, 'Service', 'relay');
      assert.ok(service);
      const spec = service.spec as { clusterIP?: string; ports: { port: number }[]; publishNotReadyAddresses?: boolean };
      assert.equal(spec.clusterIP, 'None', 'the relay Service is headless: the CMS connects to each pod');
      assert.notEqual(spec.publishNotReadyAddresses, true, 'only ready relay pods are discovered');
      assert.deepEqual(spec.ports.map((p) => p.port), [listeningPort(objects, 'relay', container)]);

      const inferUrl = new URL(env.get('INFER_URL')?.value ?? code.envDefault('relay', 'INFER_URL') ?? '');
      const inferService = find(objects, 'Service', inferUrl.hostname.split('.')[0]!);
      assert.ok(inferService, `INFER_URL ${inferUrl.href} names no Service`);
      const inferPorts = (inferService.spec as { ports: { port: number }[] }).ports.map((p) => p.port);
      assert.ok(inferPorts.includes(Number(inferUrl.port || 80)), `INFER_URL port ${inferUrl.port} is not a port of Service ${inferService.metadata.name}`);
      assert.ok(selectorMatches(labelSelector(inferService, ['spec', 'selector']), podLabels(find(objects, 'Deployment', 'infer')!)), 'INFER_URL reaches the infer pods');
      assert.equal((inferService.spec as { clusterIP?: string }).clusterIP, 'None', 'INFER_URL names a headless Service: the relay discovers each infer pod and routes models to them');
      assert.equal(inferUrl.protocol, 'http:', 'the relay expands http host names only (an https certificate names the host)');
      assert.equal(env.get('INFER_TOKEN')?.from, 'secret', 'the relay sends the infer token from the shared Secret');

      // RELAY_CONFIG names a file of a ConfigMap volume; its keys are the ones the relay reads.
      const configPath = env.get('RELAY_CONFIG')?.value;
      if (configPath) {
        const mount = container.volumeMounts?.find((m) => m.mountPath === posix.dirname(configPath));
        assert.ok(mount, `RELAY_CONFIG ${configPath}: its folder is not mounted`);
        const volume = pod.volumes?.find((v) => v.name === mount.name);
        assert.ok(volume?.configMap, `RELAY_CONFIG ${configPath}: not a ConfigMap volume`);
        const data = find(objects, 'ConfigMap', volume.configMap.name)?.data as Record<string, string> | undefined;
        const text = data?.[posix.basename(configPath)];
        assert.ok(text, `ConfigMap ${volume.configMap.name} has no key ${posix.basename(configPath)}`);
        const keys = Object.keys(JSON.parse(text) as object);
        const unread = keys.filter((k) => !RELAY_FILE_KEYS.includes(k));
        assert.deepEqual(unread, [], 'config.json keys the relay does not read');
      }
    });
  });
}

test('overlays: dev and prod differ where they should (images, namespace, tokens, scale)', () => {
  const dev = render('dev');
  const prod = render('prod');
  for (const service of SERVICES) {
    const image = splitImage(serviceWorkload(prod, service).container.image ?? '');
    assert.ok(image.name.includes('.') && image.name.includes('/'), `prod ${service} image ${image.name} comes from a registry`);
    assert.ok(image.digest || (image.tag && image.tag !== 'latest'), `prod ${service} image is pinned (tag or digest), not latest`);
    assert.equal(splitImage(serviceWorkload(dev, service).container.image ?? '').tag, 'dev');
  }
  assert.notEqual(find(dev, 'Deployment', 'infer')!.metadata.namespace, find(prod, 'Deployment', 'infer')!.metadata.namespace, 'dev and prod live in different namespaces');
  // Prod never runs the base's placeholder tokens.
  const base = find(render('base'), 'Secret', 'detector-worker-tokens')!;
  const prodSecret = find(prod, 'Secret', 'detector-worker-tokens')!;
  assert.notDeepEqual(prodSecret.data, base.data, 'prod must replace the placeholder tokens');
  const prodHpa = find(prod, 'HorizontalPodAutoscaler', 'infer')!.spec as { minReplicas: number };
  assert.ok(prodHpa.minReplicas >= 2, 'prod keeps at least two infer pods');
  const prodRelay = find(prod, 'Deployment', 'relay')!.spec as { replicas?: number };
  assert.ok((prodRelay.replicas ?? 1) >= 2, 'prod runs more than one relay');
});

test('deploy/README.md explains apply, scaling, the CMS path to relay pods, tokens and the HPA metric', () => {
  const readme = readFileSync(join(deployDir, 'README.md'), 'utf8');
  for (const phrase of ['kubectl apply -k deploy/k8s/overlays/prod', 'prometheus-adapter', 'infer_requests_in_flight', 'headless', 'INFER_TOKEN', 'RELAY_TOKEN', 'MODEL_URL_ALLOW', '/healthz', '/readyz', 'tokens.env']) {
    assert.ok(readme.includes(phrase), `deploy/README.md does not mention ${phrase}`);
  }
  // Every file the README points at exists (tokens.env is never committed: its example is).
  for (const [, path] of readme.matchAll(/`(deploy\/[\w./-]+)`/g)) {
    const exists = (p: string) => statSync(join(repoRoot, p), { throwIfNoEntry: false }) !== undefined;
    assert.ok(exists(path!) || exists(`${path}.example`), `deploy/README.md names ${path}, which does not exist`);
  }
});
