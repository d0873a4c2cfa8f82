/** Infer service configuration, from the environment (see the README's table). */
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { configInvalid, LoggingEnvFields, parseEnv, splitList, type Env } from '@detector-worker/shared/config';

const int = (defaultValue: number, minimum: number, description: string, maximum?: number) =>
  Type.Integer({ default: defaultValue, minimum, ...(maximum === undefined ? {} : { maximum }), description });

/**
 * Every variable infer reads: name, type, bounds, default. Defaults that depend on the machine
 * (INFER_WORKERS, MODEL_CACHE_DIR) are computed in loadInferConfig; sizes are in the unit
 * the name says and converted there.
 */
export const InferEnv = Type.Object({
  INFER_HOST: Type.String({ default: '0.0.0.0', description: 'infer bind address' }),
  INFER_PORT: int(8080, 0, 'infer HTTP port', 65535),
  MODEL_CACHE_DIR: Type.Optional(Type.String({ description: 'downloaded and extracted archives; default $TMPDIR/detector-worker-models' })),
  INFER_WORKERS: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'onnxruntime worker threads; default the number of cores' })),
  ORT_INTRA_OP_THREADS: int(1, 1, 'onnxruntime intra-op threads per worker', 64),
  ALLOW_FILE_MODEL_URLS: Type.Boolean({ default: true, description: 'allow file:// model URLs' }),
  MODEL_URL_ALLOW: Type.Optional(Type.String({ description: 'comma-separated hosts archives may come from; unset: any' })),
  MAX_MODELS: int(8, 1, 'loaded pipelines before least-recently-used eviction'),
  MAX_MODEL_MEMORY_MB: int(0, 0, 'estimated memory budget for loaded pipelines, MB; 0: none'),
  MODEL_MAX_MB: int(512, 1, 'archive download limit, MB'),
  MODEL_CONNECT_TIMEOUT_MS: int(10_000, 1, 'download connect timeout'),
  MODEL_BODY_TIMEOUT_MS: int(30_000, 1, 'longest pause between two download body chunks'),
  MODEL_DOWNLOAD_TIMEOUT_MS: int(300_000, 1, 'wall-clock limit for one archive download, redirects included'),
  INFER_HEADERS_TIMEOUT_MS: int(10_000, 1, 'a client must send its request headers within this; at most INFER_REQUEST_TIMEOUT_MS'),
  INFER_REQUEST_TIMEOUT_MS: int(60_000, 1, 'a client must send its whole request within this'),
  ARCHIVE_MAX_ENTRIES: int(256, 1, 'archive extraction limit: entries'),
  ARCHIVE_MAX_MB: int(1024, 1, 'archive extraction limit: unpacked MB'),
  MAX_IMAGE_BYTES: int(20 * 1024 * 1024, 1024, 'request body limit, bytes'),
  MAX_IMAGE_PIXELS: int(50_000_000, 1, 'decoded image pixel limit'),
  INFER_MAX_QUEUE: int(64, 1, 'requests allowed to wait beyond one per worker'),
  MODEL_FAILED_RETRY_MS: int(5_000, 0, 'a failed load is answered from memory for this long'),
  INFER_TOKEN: Type.Optional(Type.String({ description: 'bearer token required by infer' })),
  SHUTDOWN_TIMEOUT_MS: int(20_000, 0, 'on SIGTERM: how long in-flight requests may finish'),
  ACTION_RETRY_MAX_QUEUED: int(1000, 0, 'per-server retry queue for Redis / PostgreSQL writes'),
  ACTION_RETRY_BASE_MS: int(500, 1, 'first retry delay of a queued write'),
  ACTION_RETRY_MAX_MS: int(30_000, 1, 'longest retry delay of a queued write'),
  ...LoggingEnvFields,
});

const MB = 1024 * 1024;

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
  const e = parseEnv(InferEnv, env);
  // node:http refuses a headers timeout longer than the request timeout.
  if (e.INFER_HEADERS_TIMEOUT_MS > e.INFER_REQUEST_TIMEOUT_MS) {
    throw configInvalid(
      'INFER_HEADERS_TIMEOUT_MS',
      `INFER_HEADERS_TIMEOUT_MS (${e.INFER_HEADERS_TIMEOUT_MS}) must not exceed INFER_REQUEST_TIMEOUT_MS (${e.INFER_REQUEST_TIMEOUT_MS})`,
    );
  }
  return {
    host: e.INFER_HOST,
    port: e.INFER_PORT,
    cacheDir: e.MODEL_CACHE_DIR ?? join(tmpdir(), 'detector-worker-models'),
    // One single-threaded session per core measured best here (docs/benchmarks.md).
    workers: e.INFER_WORKERS ?? availableParallelism(),
    intraOpThreads: e.ORT_INTRA_OP_THREADS,
    allowFileUrls: e.ALLOW_FILE_MODEL_URLS,
    modelUrlAllow: splitList(e.MODEL_URL_ALLOW),
    maxModels: e.MAX_MODELS,
    maxModelBytes: e.MAX_MODEL_MEMORY_MB * MB,
    downloadMaxBytes: e.MODEL_MAX_MB * MB,
    downloadConnectTimeoutMs: e.MODEL_CONNECT_TIMEOUT_MS,
    downloadBodyTimeoutMs: e.MODEL_BODY_TIMEOUT_MS,
    downloadTimeoutMs: e.MODEL_DOWNLOAD_TIMEOUT_MS,
    headersTimeoutMs: e.INFER_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: e.INFER_REQUEST_TIMEOUT_MS,
    archiveMaxEntries: e.ARCHIVE_MAX_ENTRIES,
    archiveMaxBytes: e.ARCHIVE_MAX_MB * MB,
    maxBodyBytes: e.MAX_IMAGE_BYTES,
    maxImagePixels: e.MAX_IMAGE_PIXELS,
    maxQueue: e.INFER_MAX_QUEUE,
    failedRetryMs: e.MODEL_FAILED_RETRY_MS,
    token: e.INFER_TOKEN,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    actionRetryMaxQueued: e.ACTION_RETRY_MAX_QUEUED,
    actionRetryBaseMs: e.ACTION_RETRY_BASE_MS,
    actionRetryMaxMs: e.ACTION_RETRY_MAX_MS,
  };
}
