/**
 * Many infer replicas (issue 13): three real infer processes, ten models, twenty frame groups
 * (snapshot cameras, two per model, tracking off so one request per frame) on one relay, in
 * two set-ups in one run:
 *   before: the relay sees ONE address, a round-robin TCP proxy in front of the replicas (what a
 *           Kubernetes Service does per connection), so every model lands everywhere;
 *   after:  the relay gets the three URLs and places each group by the bounded-load ring.
 * Fresh infer processes per set-up, so model loads start from zero. Reports loads per model
 * (what each replica loaded, from GET /v1/models) and requests per replica (infer's own
 * infer_requests_total) over BENCH_SECONDS once every group has answered.
 * Run: npm run bench:replicas   (BENCH_SECONDS=15)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { pino } from 'pino';
import { request } from 'undici';
import WebSocket from 'ws';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay } from '@detector-worker/relay/server';
import { repoRoot } from '@detector-worker/testkit/fixtures';
import { freePort } from '@detector-worker/testkit/servers';
import { buildOneBoxDetector } from '@detector-worker/testkit/onnx-builder';
import { writeMpta } from '@detector-worker/testkit/mpta';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const REPLICAS = 3;
const MODELS = 10;
const GROUPS = 20;
const SNAPSHOT_INTERVAL_MS = 500;
const r2 = (n: number) => Math.round(n * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Infer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startInfer(cacheDir: string): Promise<Infer> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(repoRoot, 'services/infer/dist/main.js')], {
    env: { ...process.env, INFER_HOST: '127.0.0.1', INFER_PORT: String(port), MODEL_CACHE_DIR: cacheDir, INFER_WORKERS: '1', ORT_INTRA_OP_THREADS: '1', MAX_MODELS: '16', LOG_LEVEL: 'warn', LOG_PRETTY: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  for (const end = Date.now() + 60_000; Date.now() < end; await sleep(100)) {
    if (child.exitCode !== null) throw new Error('infer exited before it was ready');
    const ready = await request(`${url}/readyz`).then((r) => r.body.dump().then(() => r.statusCode === 200), () => false);
    if (ready) return { url, child, stop };
  }
  await stop();
  throw new Error('infer was not ready within 60 s');
}

/** Round-robin per connection, as kube-proxy spreads a Service's connections over its pods. */
async function startRoundRobinProxy(targets: string[]): Promise<{ url: string; close(): Promise<void> }> {
  let next = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const target = new URL(targets[next++ % targets.length]!);
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface ReplicaCounts {
  loadedModels: string[];
  requests: number;
}

async function counts(url: string): Promise<ReplicaCounts> {
  const models = (await (await request(`${url}/v1/models`)).body.json()) as { models: Array<{ modelId: string }> };
  const metrics = await (await request(`${url}/metrics`)).body.text();
  let requests = 0;
  for (const m of metrics.matchAll(/^infer_requests_total\{[^}]*\} (\d+(?:\.\d+)?)$/gm)) requests += Number(m[1]);
  return { loadedModels: models.models.map((m) => m.modelId), requests };
}

interface Result {
  setup: string;
  loadsPerModelAvg: number;
  loadsPerModelMax: number;
  requestsPerReplica: number[];
  maxOverMean: number;
  modelsPerReplica: number[];
}

async function runSetup(setup: 'before' | 'after', work: string, archives: string[], snapshotBase: string): Promise<Result> {
  const infers = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => startInfer(join(work, `${setup}-cache-${i}`))));
  const proxy = setup === 'before' ? await startRoundRobinProxy(infers.map((p) => p.url)) : undefined;
  const inferUrl = proxy ? proxy.url : infers.map((p) => p.url).join(',');
  const relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl, inferTimeoutMs: 10_000, maxStreams: GROUPS }, pino({ level: 'silent' }));
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const ids = Array.from({ length: GROUPS }, (_, i) => `display-${i};cam-${i}`);
    ids.forEach((id, i) => {
      const model = (i % MODELS) + 1;
      ws.send(JSON.stringify({ type: 'subscribe', payload: { subscriptionIdentifier: id, snapshotUrl: `${snapshotBase}/cam-${i}.jpg`, snapshotInterval: SNAPSHOT_INTERVAL_MS, modelUrl: archives[model - 1], modelName: `Model ${model}`, modelId: model } }));
    });
    for (const end = Date.now() + 60_000; ; await sleep(100)) {
      if (ids.every((id) => relay.registry.get(id)?.group.stats.lastResultAt)) break;
      if (Date.now() > end) throw new Error(`${setup}: not every group answered within 60 s`);
    }
    const start = await Promise.all(infers.map((p) => counts(p.url)));
    await sleep(SECONDS * 1000);
    const end = await Promise.all(infers.map((p) => counts(p.url)));
    const replicasOf = new Map<string, number>();
    for (const c of end) for (const m of c.loadedModels) replicasOf.set(m, (replicasOf.get(m) ?? 0) + 1);
    const requests = end.map((c, i) => c.requests - start[i]!.requests);
    const mean = requests.reduce((a, b) => a + b, 0) / requests.length;
    return {
      setup: setup === 'before' ? 'before: one Service address (round-robin proxy)' : 'after: three URLs, bounded-load ring',
      loadsPerModelAvg: r2([...replicasOf.values()].reduce((a, b) => a + b, 0) / MODELS),
      loadsPerModelMax: Math.max(...replicasOf.values()),
      requestsPerReplica: requests,
      maxOverMean: r2(Math.max(...requests) / mean),
      modelsPerReplica: end.map((c) => c.loadedModels.length),
    };
  } finally {
    ws.close();
    await relay.close();
    await proxy?.close();
    await Promise.all(infers.map((p) => p.stop()));
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-replicas-'));
  const photo = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#446688' } }).jpeg().toBuffer();
  const snapshots = createHttpServer((_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo));
  try {
    await new Promise<void>((r) => snapshots.listen(0, '127.0.0.1', r));
    const snapshotBase = `http://127.0.0.1:${(snapshots.address() as AddressInfo).port}`;
    const model = Buffer.from(buildOneBoxDetector());
    const archives: string[] = [];
    for (let m = 1; m <= MODELS; m++) {
      const path = await writeMpta(work, `model-${m}.mpta`, {
        pipeline: { pipeline: { modelId: `det-${m}`, modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['car'], tracking: { enabled: false } } },
        files: { 'det.onnx': model },
      });
      archives.push(`file://${path}`);
    }
    const results = [await runSetup('before', work, archives, snapshotBase), await runSetup('after', work, archives, snapshotBase)];
    console.log(`\n${REPLICAS} infer replicas, ${MODELS} models, ${GROUPS} frame groups (snapshot every ${SNAPSHOT_INTERVAL_MS} ms), requests counted over ${SECONDS} s\n`);
    console.log('| set-up | loads per model (avg) | loads per model (max) | models per replica | requests per replica | max / mean |');
    console.log('|---|---|---|---|---|---|');
    for (const r of results) {
      console.log(`| ${r.setup} | ${r.loadsPerModelAvg} | ${r.loadsPerModelMax} | ${r.modelsPerReplica.join(' / ')} | ${r.requestsPerReplica.join(' / ')} | ${r.maxOverMean} |`);
    }
  } finally {
    await new Promise<void>((r) => snapshots.close(() => r()));
    await rm(work, { recursive: true, force: true });
  }
}

await main();
