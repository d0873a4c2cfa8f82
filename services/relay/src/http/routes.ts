/**
 * HTTP routes of the relay: the protocol's image endpoint, probes and metrics.
 * `GET /camera/{camera_id}/image`: camera_id is the full subscription identifier
 * (`display;camera`, `;` raw or URL-encoded); the latest frame of its camera as JPEG.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CodedError } from '@detector-worker/shared/errors';
import type { CmsLink } from '../cms/cms-link.js';
import type { RelayConfig } from '../config.js';
import type { SubscriptionRegistry } from '../subscriptions/registry.js';
import type { RelayMetrics } from './metrics.js';
import { coded } from '../error-codes.js';
import { registerDebugPage } from './debug-page.js';

function sendError(reply: FastifyReply, err: CodedError): FastifyReply {
  return reply.code(err.statusCode).send(err.toJSON());
}

/** Polled routes: per-request logs would drown everything else. */
export const QUIET = { logLevel: 'warn' as const };

export interface RouteDeps {
  registry: SubscriptionRegistry;
  cms: CmsLink;
  metrics: RelayMetrics;
  config: RelayConfig;
  ready: () => boolean;
  authorized: (token: string | undefined) => boolean;
}

export function registerHttpRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { registry } = deps;
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0];
    if (path === '/' || path === '/healthz' || path === '/readyz' || path === '/metrics') return;
    const token = (request.query as { token?: string }).token ?? request.headers.authorization?.replace(/^Bearer /, '');
    if (!deps.authorized(token)) return sendError(reply, coded('UNAUTHORIZED', 'a valid token is required'));
  });

  app.get<{ Params: { cameraId: string } }>('/camera/:cameraId/image', QUIET, async (request, reply) => {
    const id = request.params.cameraId;
    const sub = registry.get(id);
    if (!sub) return sendError(reply, coded('CAMERA_NOT_FOUND', `no subscription ${id}`));
    const frame = registry.readerOf(sub)?.latest;
    if (!frame) return sendError(reply, coded('NO_FRAME', `no frame from ${id} yet`));
    reply.header('content-type', 'image/jpeg');
    reply.header('cache-control', 'no-store');
    reply.header('x-captured-at', frame.capturedAt.toISOString());
    return reply.send(frame.jpeg);
  });

  app.get('/healthz', QUIET, async () => ({ status: 'ok' }));
  app.get('/readyz', QUIET, async (_request, reply) => {
    if (!deps.ready()) return reply.code(503).send({ status: 'shutting down' });
    return { status: 'ready', subscriptions: registry.list().length, cms: deps.cms.connected };
  });
  app.get('/metrics', QUIET, async (_request, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
  registerDebugPage(app, registry);
}
