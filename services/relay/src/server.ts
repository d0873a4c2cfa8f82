/**
 * The relay's composition root: builds the parts and wires them, nothing else. One frame's
 * path, room by room:
 *   cameras/ (a reader per camera delivers frames)
 *   -> infer-link/ (the frame group of each camera, crop and model posts a frame to infer)
 *   -> cms/result-message (each member's answer becomes imageDetection or patchSession)
 *   -> cms/ (broadcast on the CMS WebSocket).
 * subscriptions/ says which groups exist, http/ serves images, probes, metrics and /debug,
 * system/ measures the machine for state reports.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { createLogger, type Logger } from '@detector-worker/shared/logging';
import type { RelayConfig } from './config.js';
import { CameraHub } from './cameras/camera-hub.js';
import { CmsLink } from './cms/cms-link.js';
import { resultMessage } from './cms/result-message.js';
import { SystemUsage } from './system/system-usage.js';
import { splitList } from '@detector-worker/shared/config';
import { InferEndpoints } from './infer-link/infer-endpoints.js';
import { InferRouter } from './infer-link/infer-router.js';
import { FrameGroups } from './infer-link/frame-groups.js';
import { SubscriptionRegistry, type Subscription } from './subscriptions/registry.js';
import { registerHttpRoutes } from './http/routes.js';
import { RelayMetrics } from './http/metrics.js';

/** The relay's parts, built but not yet listening (tests reach into them). */
export interface RelayParts {
  app: FastifyInstance;
  config: RelayConfig;
  registry: SubscriptionRegistry;
  hub: CameraHub;
  cms: CmsLink;
}

export interface BuiltRelay extends RelayParts {
  /** Listens on config.host:config.port (port 0 = any free port). */
  start(): Promise<{ url: string; port: number }>;
  /** Closes CMS sockets, drops subscriptions, waits for ffmpeg children to exit, stops listening. */
  close(): Promise<void>;
}

/** A started relay. */
export interface Relay extends RelayParts {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Builds the relay without listening: `await relay.start()` opens the port. */
export async function buildRelay(config: RelayConfig, logger: Logger = createLogger('relay')): Promise<BuiltRelay> {
  const hub = new CameraHub(config, logger.child({ component: 'cameras' }));
  // One or more infer replicas; each model goes to its replica on a bounded-load ring.
  const endpoints = new InferEndpoints(splitList(config.inferUrl), { refreshMs: config.inferDnsRefreshMs, logger: logger.child({ component: 'infer-endpoints' }) });
  const client = new InferRouter(() => endpoints.current(), { token: config.inferToken, timeoutMs: config.inferTimeoutMs });
  const metrics = new RelayMetrics();
  const groups = new FrameGroups<Subscription>(
    hub,
    {
      client,
      logger: logger.child({ component: 'inference' }),
      jpegQuality: config.jpegQuality,
      detectFrames: config.detectFrames,
      onLatency: (ms, ok, code) => metrics.observeInfer(ms, ok, code),
      onVisitEvent: (event, value) => metrics.observeVisit(event, value),
      idleIntervalMs: config.idleDetectIntervalMs,
      onResult: (r) => {
        r.subscription.last = { detection: r.answer.detection, result: r.answer.result, at: Date.now() };
        const msg = resultMessage(r);
        // `link` exists before any frame can arrive.
        if (msg) link.broadcast(msg);
      },
    },
    { targetFps: config.targetFps, pollIntervalMs: config.pollIntervalMs, ...(config.idleSlowCamera && config.idleDetectIntervalMs > 0 && config.keyframeOnlyFps > 0 ? { idleFps: config.keyframeOnlyFps } : {}) },
  );
  const registry = new SubscriptionRegistry(groups, { maxStreams: config.maxStreams }, logger.child({ component: 'subscriptions' }));
  const link = new CmsLink(registry, new SystemUsage(), { heartbeatIntervalMs: config.heartbeatIntervalMs, reconnectGraceMs: config.reconnectGraceMs }, logger.child({ component: 'cms' }));
  metrics.watch(registry, hub, link);

  const app = Fastify({ loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger });
  // A frame over 1 MiB closes that connection (1009): ws cannot skip the rest of a frame.
  // UTF-8 is checked per message in CmsLink, so an invalid text frame is ignored, not fatal.
  await app.register(websocket, { options: { maxPayload: 1024 * 1024, skipUTF8Validation: true } });
  let closing = false;
  const expected = config.relayToken ? Buffer.from(config.relayToken) : undefined;
  const authorized = (token: string | undefined): boolean => {
    if (!expected) return true;
    const given = Buffer.from(token ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  app.register(async (scope) => {
    scope.get('/', { websocket: true }, (socket, request) => {
      const q = request.query as { token?: string };
      const bearer = request.headers.authorization?.replace(/^Bearer /, '');
      if (!authorized(q.token ?? bearer) || closing) {
        socket.close(closing ? 1013 : 1008, closing ? 'shutting down' : 'unauthorized');
        return;
      }
      link.attach(socket, request.ip);
    });
  });
  registerHttpRoutes(app, { registry, cms: link, metrics, config, ready: () => !closing, authorized });
  let closed: Promise<void> | undefined;
  return {
    app,
    config,
    registry,
    hub,
    cms: link,
    start: async () => {
      await endpoints.start();
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      logger.info({ port, inferUrl: config.inferUrl, inferEndpoints: endpoints.current() }, 'relay listening');
      return { url: `http://127.0.0.1:${port}`, port };
    },
    close: () => {
      closed ??= (async () => {
        closing = true;
        link.close();
        registry.clear();
        await hub.stopAll();
        await app.close();
        endpoints.stop();
        await client.close();
      })();
      return closed;
    },
  };
}

/** Builds and starts the relay. */
export async function startRelay(config: RelayConfig, logger: Logger = createLogger('relay')): Promise<Relay> {
  const built = await buildRelay(config, logger);
  let listening: { url: string; port: number };
  try {
    listening = await built.start();
  } catch (err) {
    await built.close();
    throw err;
  }
  const { url, port } = listening;
  const { app, registry, hub, cms, close } = built;
  return { app, config, registry, hub, cms, url, port, close };
}
