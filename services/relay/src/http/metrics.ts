/** Prometheus metrics of the relay; camera and group counters are read when scraped. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { redactUrl } from '@detector-worker/shared/logging';
import type { CameraHub } from '../cameras/camera-hub.js';
import type { CmsLink } from '../cms/cms-link.js';
import type { VisitEvent } from '../infer-link/group-tracking.js';
import type { SubscriptionRegistry } from '../subscriptions/registry.js';

export class RelayMetrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<'outcome'>;
  private readonly errors: Counter<'code'>;
  private readonly visits: Counter<'event'>;
  private readonly runsPerVisit: Histogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.latency = new Histogram({ name: 'relay_infer_request_duration_seconds', help: 'Infer request latency seen by the relay', labelNames: ['outcome'], buckets: [0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30], registers: [this.registry] });
    this.errors = new Counter({ name: 'relay_infer_errors_total', help: 'Failed infer requests by code', labelNames: ['code'], registers: [this.registry] });
    this.visits = new Counter({
      name: 'relay_visit_events_total',
      help: 'Vehicle tracking by event: detect (detect-stage requests), started / ended (visits), full_run (full pipeline runs), event (imageDetection sent for a visit), patch (a changed fused attribute)',
      labelNames: ['event'],
      registers: [this.registry],
    });
    this.runsPerVisit = new Histogram({ name: 'relay_visit_full_runs', help: 'Full pipeline runs per ended visit', buckets: [0, 1, 2, 3, 4, 5, 10], registers: [this.registry] });
  }

  /** Visit-mode events of a frame group (see FrameGroupDeps.onVisitEvent). */
  observeVisit(event: VisitEvent, value?: number): void {
    this.visits.inc({ event: event === 'fullRun' ? 'full_run' : event });
    if (event === 'ended' && value !== undefined) this.runsPerVisit.observe(value);
  }

  observeInfer(ms: number, ok: boolean, code: string): void {
    this.latency.observe({ outcome: ok ? 'ok' : 'error' }, ms / 1000);
    if (!ok) this.errors.inc({ code });
  }

  watch(registry: SubscriptionRegistry, hub: CameraHub, cms: CmsLink): void {
    const r = this.registry;
    type Reader = ReturnType<CameraHub['readers']>[number];
    const label = (reader: Reader) => redactUrl(reader.source.url);
    const perCamera = (name: string, help: string, pick: (s: Reader['stats'], reader: Reader) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['camera'],
        registers: [r],
        collect() {
          this.reset();
          for (const reader of hub.readers()) this.set({ camera: label(reader) }, pick(reader.stats, reader));
        },
      });
    perCamera('relay_camera_frames_read_total', 'Frames read per camera (counter semantics)', (s) => s.framesRead);
    perCamera('relay_camera_reconnects_total', 'Reconnects per camera (counter semantics)', (s) => s.reconnects);
    perCamera('relay_camera_online', '1 when the camera delivers frames', (s) => (s.online ? 1 : 0));
    perCamera('relay_camera_frame_age_seconds', 'Seconds since the camera last delivered a frame', (s) => (s.lastFrameAt ? (Date.now() - s.lastFrameAt) / 1000 : -1));
    perCamera('relay_camera_fps', 'Frames per second the camera delivered lately', (_s, reader) => Math.round(reader.framesPerSecond() * 100) / 100);
    perCamera('relay_camera_retry_delay_seconds', 'Backoff before the pending reconnect (0 when none is pending)', (s) => s.retryInMs / 1000);
    perCamera('relay_camera_consecutive_failures', 'Failures since the camera was last healthy (drives the backoff)', (s) => s.consecutiveFailures);
    new Gauge({
      name: 'relay_camera_failures_total',
      help: 'Camera failures by reason: timeout, connect, http_status, too_large, not_jpeg, invalid_jpeg, stalled, repeated, exited, error (counter semantics)',
      labelNames: ['camera', 'reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const reader of hub.readers()) for (const [reason, n] of Object.entries(reader.stats.failures)) this.set({ camera: label(reader), reason }, n ?? 0);
      },
    });
    const perGroup = (name: string, help: string, pick: (g: import('../infer-link/frame-group.js').GroupStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['subscription'],
        registers: [r],
        collect() {
          this.reset();
          for (const sub of registry.list()) this.set({ subscription: sub.id }, pick(sub.group.stats));
        },
      });
    perGroup('relay_frames_sent_total', 'Frames sent to infer (counter semantics)', (g) => g.framesSent);
    perGroup('relay_frames_dropped_total', 'Frames replaced by a newer one before sending (counter semantics)', (g) => g.framesDropped);
    perGroup('relay_frame_age_at_send_seconds', 'Capture to POST delay of the last frame sent', (g) => (g.lastFrameAgeMs ?? 0) / 1000);
    new Gauge({
      name: 'relay_subscriptions',
      help: 'Subscriptions the relay serves (at most MAX_STREAMS)',
      registers: [r],
      collect() {
        this.set(registry.list().length);
      },
    });
    new Gauge({
      name: 'relay_subscriptions_refused_total',
      help: 'Subscribes refused by reason: max_streams (MAX_STREAMS reached), bad_identifier (counter semantics; the wire protocol has no refusal message)',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        for (const [reason, n] of Object.entries(registry.refused)) this.set({ reason }, n);
      },
    });
    new Gauge({
      name: 'relay_cms_connected',
      help: 'CMS WebSocket connections',
      registers: [r],
      collect() {
        this.set(cms.connected);
      },
    });
    new Gauge({
      name: 'relay_ffmpeg_processes',
      help: 'ffmpeg children running',
      registers: [r],
      collect() {
        this.set(hub.processCount());
      },
    });
  }
}
