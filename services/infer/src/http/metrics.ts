/**
 * Prometheus metrics of the infer service (prom-client, Prometheus naming conventions).
 * Counters are updated on the request path; gauges that mirror state (queue, models) are
 * collected when /metrics is scraped, so nothing is polled.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InferService } from '../service.js';
import type { ActionOutcome } from '../pipeline/types.js';
import type { ActionStats } from '../actions/stats.js';

export class InferMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'status'>;
  readonly latency: Histogram<'model' | 'status'>;
  readonly actionOutcomes: Counter<'type' | 'status'>;

  constructor(service: InferService) {
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'infer_requests_total', help: 'Infer requests by model and HTTP status', labelNames: ['model', 'status'], registers: [this.registry] });
    this.latency = new Histogram({
      name: 'infer_request_duration_seconds',
      help: 'Infer request latency by model and HTTP status',
      labelNames: ['model', 'status'],
      buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10],
      registers: [this.registry],
    });
    this.actionOutcomes = new Counter({ name: 'infer_action_outcomes_total', help: 'Pipeline action outcomes by type and status', labelNames: ['type', 'status'], registers: [this.registry] });
    this.scalar('infer_requests_in_flight', 'Infer requests being served (the per-pod HPA metric)', () => service.inFlight);
    this.scalar('infer_queue_depth', 'Inference tasks waiting for a worker thread', () => service.pool.queueSize);
    this.scalar('infer_models_loaded', 'Pipelines ready to serve', () => service.registry.loadedCount);
    new Gauge({
      name: 'infer_model_memory_bytes',
      help: 'Estimated memory of each loaded pipeline (model bytes x workers x 2)',
      labelNames: ['model'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const m of service.registry.list()) if (m.estimatedMemoryBytes !== undefined) this.set({ model: m.modelId }, m.estimatedMemoryBytes);
      },
    });
    const stats = service.registry.stats;
    this.scalar('infer_model_loads_total', 'Pipeline loads started (counter semantics)', () => stats.loads);
    this.scalar('infer_model_load_failures_total', 'Pipeline loads that failed (counter semantics)', () => stats.loadFailures);
    this.scalar('infer_model_downloads_total', 'Archive downloads started (counter semantics)', () => stats.downloads);
    const actions = service.actions as Partial<{ stats(): ActionStats }>;
    if (typeof actions.stats === 'function') {
      const stats = () => actions.stats!();
      this.scalar('infer_action_retry_pending', 'Redis / PostgreSQL writes waiting in retry queues (their server is down)', () => stats().pending);
      new Gauge({
        name: 'infer_action_writes_total',
        help: 'Action writes by type and fate: queued for retry, retried later, dropped (counter semantics)',
        labelNames: ['type', 'fate'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [type, c] of Object.entries(stats().byType)) for (const fate of ['queued', 'retried', 'dropped'] as const) this.set({ type, fate }, c[fate]);
        },
      });
    }
    this.loadDuration = new Histogram({
      name: 'infer_model_load_duration_seconds',
      help: 'Download + extract + session creation time of a pipeline',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    service.registry.onLoad = (seconds) => this.loadDuration.observe(seconds);
  }

  readonly loadDuration: Histogram;

  /** A single-value gauge read when /metrics is scraped. */
  private scalar(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  observeRequest(model: string, status: number, seconds: number): void {
    const labels = { model, status: String(status) };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
  }

  observeActions(outcomes: readonly ActionOutcome[]): void {
    for (const o of outcomes) this.actionOutcomes.inc({ type: o.type, status: o.status });
  }
}
