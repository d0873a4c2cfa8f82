/**
 * The CMS side of the relay: every WebSocket the CMS opens gets state reports every
 * heartbeat interval and may send commands. Bad messages are logged and ignored; the
 * connection stays open. When the last connection drops, subscriptions live on for a grace
 * period so a reconnecting CMS finds its cameras still running.
 */
import { isUtf8 } from 'node:buffer';
import type { RawData, WebSocket } from 'ws';
import type { Logger } from '@detector-worker/shared/logging';
import { parseCmsMessage, type CameraConnection, type CmsCommand, type StateReport, type WorkerMessage } from '@detector-worker/shared/protocol/messages';
import type { SubscriptionRegistry } from '../subscriptions/registry.js';
import type { SystemUsage } from '../system/system-usage.js';
import { LogThrottle } from './log-throttle.js';

/** "Message ignored" lines per connection and window; the rest are counted. */
const IGNORED_LOG_BURST = 20;
const IGNORED_LOG_WINDOW_MS = 10_000;

/** A text frame as a string, or null when it is not valid UTF-8. */
function textOf(data: RawData): string | null {
  const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  // The server skips ws's own UTF-8 check (which would close the connection): the check
  // is here, so a bad frame is ignored like any other bad message.
  return isUtf8(buf) ? buf.toString('utf8') : null;
}

export interface CmsLinkOptions {
  heartbeatIntervalMs: number;
  reconnectGraceMs: number;
}

export class CmsLink {
  private readonly sockets = new Set<WebSocket>();
  private graceTimer: NodeJS.Timeout | undefined;
  /** Messages dropped because no CMS was connected. */
  undelivered = 0;

  constructor(
    private readonly registry: SubscriptionRegistry,
    private readonly usage: SystemUsage,
    private readonly options: CmsLinkOptions,
    private readonly logger: Logger,
  ) {}

  get connected(): number {
    return this.sockets.size;
  }

  attach(socket: WebSocket, remote: string): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.sockets.add(socket);
    const log = this.logger.child({ cms: remote });
    log.info({ subscriptions: this.registry.list().length }, 'CMS connected');
    const heartbeat = setInterval(() => this.sendTo(socket, this.stateReport()), this.options.heartbeatIntervalMs);
    this.sendTo(socket, this.stateReport());
    const throttle = new LogThrottle(IGNORED_LOG_BURST, IGNORED_LOG_WINDOW_MS);
    const ignored = (fields: { type?: string; reason: string }): void => {
      const { log: write, suppressed } = throttle.take(Date.now());
      if (write) log.warn({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, 'CMS message ignored');
    };
    socket.on('message', (data, isBinary) => {
      if (isBinary) return ignored({ reason: 'binary frame' });
      const text = textOf(data);
      if (text === null) return ignored({ reason: 'text frame is not valid UTF-8' });
      const parsed = parseCmsMessage(text);
      if (!parsed.ok) return ignored({ ...(parsed.type !== undefined ? { type: parsed.type } : {}), reason: parsed.reason });
      try {
        this.handle(parsed.command, socket, log);
      } catch (err) {
        // A bug in handling one command must not take the CMS connection (or the process) down.
        log.error({ type: parsed.command.type, err }, 'CMS command failed');
      }
    });
    socket.on('error', (err) => log.warn({ err: err.message }, 'CMS socket error'));
    socket.on('close', (code?: number, reason?: Buffer) => {
      clearInterval(heartbeat);
      this.sockets.delete(socket);
      log.info({ code, reason: reason?.toString().slice(0, 123), ...(throttle.pending > 0 ? { ignoredNotLogged: throttle.pending } : {}) }, 'CMS disconnected');
      if (this.sockets.size === 0) this.startGrace();
    });
  }

  private startGrace(): void {
    clearTimeout(this.graceTimer);
    const n = this.registry.list().length;
    if (n === 0) return;
    this.logger.info({ graceMs: this.options.reconnectGraceMs, subscriptions: n }, 'no CMS connected; keeping subscriptions for the grace period');
    this.graceTimer = setTimeout(() => {
      this.logger.info({ subscriptions: this.registry.list().length }, 'grace period over; removing subscriptions');
      this.registry.clear();
    }, this.options.reconnectGraceMs);
    this.graceTimer.unref();
  }

  private handle(command: CmsCommand, socket: WebSocket, log: Logger): void {
    switch (command.type) {
      case 'subscribe': {
        const outcome = this.registry.subscribe(command.payload);
        if (outcome.status === 'refused') log.warn({ subscription: command.payload.subscriptionIdentifier, reason: outcome.reason }, 'subscribe refused');
        return;
      }
      case 'unsubscribe':
        if (!this.registry.unsubscribe(command.payload.subscriptionIdentifier)) log.info({ subscription: command.payload.subscriptionIdentifier }, 'unsubscribe of an unknown subscription');
        return;
      case 'requestState':
        this.sendTo(socket, this.stateReport());
        return;
      case 'setSessionId': {
        const n = this.registry.setSessionId(command.payload.displayIdentifier, command.payload.sessionId);
        log.info({ display: command.payload.displayIdentifier, sessionId: command.payload.sessionId, subscriptions: n }, 'session set');
        return;
      }
      case 'patchSessionResult':
        if (command.payload.success) log.debug({ sessionId: command.payload.sessionId }, 'session patched');
        else log.warn({ sessionId: command.payload.sessionId, message: command.payload.message }, 'CMS refused a session patch');
        return;
    }
  }

  stateReport(): StateReport {
    const gpu = this.usage.gpuUsage();
    const cameraConnections = this.registry.list().map((sub): CameraConnection => {
      const c: CameraConnection = { subscriptionIdentifier: sub.id, modelId: sub.payload.modelId, modelName: sub.payload.modelName, online: this.registry.online(sub) };
      if (sub.crop) Object.assign(c, sub.crop);
      return c;
    });
    return { type: 'stateReport', cpuUsage: this.usage.cpuPercent(), memoryUsage: this.usage.memoryPercent(), gpuUsage: gpu.usage, gpuMemoryUsage: gpu.memory, cameraConnections };
  }

  /** Sends to every connected CMS; counted as undelivered when none is. */
  broadcast(message: WorkerMessage): void {
    if (this.sockets.size === 0) {
      this.undelivered++;
      return;
    }
    for (const s of this.sockets) this.sendTo(s, message);
  }

  private sendTo(socket: WebSocket, message: WorkerMessage): void {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify(message));
  }

  close(): void {
    clearTimeout(this.graceTimer);
    for (const s of this.sockets) s.close(1001, 'relay shutting down');
  }
}
