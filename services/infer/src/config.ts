/** Infer service configuration, from the environment (see the README's table). */
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { envBool, envInt, envList, envOptionalString, envString, type Env } from '@detector-worker/shared/config';
import { CodedError } from '@detector-worker/shared/errors';

export interface InferConfig {
  host: string;
  port: number;
  /** Folder for downloaded archives and extracted pipelines. */
  cacheDir: string;
  /** Worker threads running onnxruntime sessions. */
  workers: number;
  /** onnxruntime intra-op threads per worker. */
  intraOpThreads: number;
  allowFileUrls: boolean;
  modelUrlAllow: string[];
  maxModels: number;
  /** Memory budget for loaded models (estimated), bytes; 0 = no budget. */
  maxModelBytes: number;
  downloadMaxBytes: number;
  downloadConnectTimeoutMs: number;
  downloadBodyTimeoutMs: number;
  /** Wall-clock limit for one archive download, redirects included. */
  downloadTimeoutMs: number;
  /** A client must send its request headers within this (slowloris). */
  headersTimeoutMs: number;
  /** A client must send its whole request, body included, within this; the answer may take longer. */
  requestTimeoutMs: number;
  archiveMaxEntries: number;
  archiveMaxBytes: number;
  maxBodyBytes: number;
  maxImagePixels: number;
  /** Requests waiting for a worker beyond this answer 429. */
  maxQueue: number;
  failedRetryMs: number;
  token: string | undefined;
  shutdownTimeoutMs: number;
  /** Bounded in-memory retry queue per Redis / PostgreSQL server for writes made while it is down. */
  actionRetryMaxQueued: number;
  actionRetryBaseMs: number;
  actionRetryMaxMs: number;
}

export function loadInferConfig(env: Env = process.env): InferConfig {
  const cores = availableParallelism();
  const headersTimeoutMs = envInt(env, 'INFER_HEADERS_TIMEOUT_MS', 10_000, { min: 1 });
  const requestTimeoutMs = envInt(env, 'INFER_REQUEST_TIMEOUT_MS', 60_000, { min: 1 });
  // node:http refuses a headers timeout longer than the request timeout.
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new CodedError('CONFIG_INVALID', `INFER_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not exceed INFER_REQUEST_TIMEOUT_MS (${requestTimeoutMs})`, 500, { variable: 'INFER_HEADERS_TIMEOUT_MS' });
  }
  return {
    host: envString(env, 'INFER_HOST', '0.0.0.0'),
    port: envInt(env, 'INFER_PORT', 8080, { min: 0, max: 65535 }),
    cacheDir: envString(env, 'MODEL_CACHE_DIR', join(tmpdir(), 'detector-worker-models')),
    // One single-threaded session per core measured best here (docs/benchmarks.md).
    workers: envInt(env, 'INFER_WORKERS', cores, { min: 1, max: 64 }),
    intraOpThreads: envInt(env, 'ORT_INTRA_OP_THREADS', 1, { min: 1, max: 64 }),
    allowFileUrls: envBool(env, 'ALLOW_FILE_MODEL_URLS', true),
    modelUrlAllow: envList(env, 'MODEL_URL_ALLOW'),
    maxModels: envInt(env, 'MAX_MODELS', 8, { min: 1 }),
    maxModelBytes: envInt(env, 'MAX_MODEL_MEMORY_MB', 0, { min: 0 }) * 1024 * 1024,
    downloadMaxBytes: envInt(env, 'MODEL_MAX_MB', 512, { min: 1 }) * 1024 * 1024,
    downloadConnectTimeoutMs: envInt(env, 'MODEL_CONNECT_TIMEOUT_MS', 10_000, { min: 1 }),
    downloadBodyTimeoutMs: envInt(env, 'MODEL_BODY_TIMEOUT_MS', 30_000, { min: 1 }),
    downloadTimeoutMs: envInt(env, 'MODEL_DOWNLOAD_TIMEOUT_MS', 300_000, { min: 1 }),
    headersTimeoutMs,
    requestTimeoutMs,
    archiveMaxEntries: envInt(env, 'ARCHIVE_MAX_ENTRIES', 256, { min: 1 }),
    archiveMaxBytes: envInt(env, 'ARCHIVE_MAX_MB', 1024, { min: 1 }) * 1024 * 1024,
    maxBodyBytes: envInt(env, 'MAX_IMAGE_BYTES', 20 * 1024 * 1024, { min: 1024 }),
    maxImagePixels: envInt(env, 'MAX_IMAGE_PIXELS', 50_000_000, { min: 1 }),
    maxQueue: envInt(env, 'INFER_MAX_QUEUE', 64, { min: 1 }),
    failedRetryMs: envInt(env, 'MODEL_FAILED_RETRY_MS', 5_000, { min: 0 }),
    token: envOptionalString(env, 'INFER_TOKEN'),
    shutdownTimeoutMs: envInt(env, 'SHUTDOWN_TIMEOUT_MS', 20_000, { min: 0 }),
    actionRetryMaxQueued: envInt(env, 'ACTION_RETRY_MAX_QUEUED', 1000, { min: 0 }),
    actionRetryBaseMs: envInt(env, 'ACTION_RETRY_BASE_MS', 500, { min: 1 }),
    actionRetryMaxMs: envInt(env, 'ACTION_RETRY_MAX_MS', 30_000, { min: 1 }),
  };
}
