/**
 * Relay configuration: the environment, plus the original worker's config.json keys
 * (`poll_interval_ms`, `max_streams`, `target_fps`, `reconnect_interval_sec`, `max_retries`)
 * from the file named by RELAY_CONFIG. Environment variables win over the file.
 */
import { readFileSync } from 'node:fs';
import { CodedError } from '@detector-worker/shared/errors';
import { envInt, envNumber, envOptionalString, envString, envUrl, type Env } from '@detector-worker/shared/config';

export interface RelayConfig {
  host: string;
  port: number;
  inferUrl: string;
  inferToken: string | undefined;
  /** Token the CMS must present (query `token` or bearer header), when set. */
  relayToken: string | undefined;
  heartbeatIntervalMs: number;
  reconnectGraceMs: number;
  /** Original keys. */
  pollIntervalMs: number;
  maxStreams: number;
  targetFps: number;
  reconnectIntervalSec: number;
  maxRetries: number;
  /** Longest backoff between reconnects. */
  maxBackoffSec: number;
  /** A reader that delivers no new frame for this long is restarted. */
  watchdogMs: number;
  /** The same frame this many times in a row counts as a stall. */
  identicalFrameLimit: number;
  /** At or below this rate an RTSP camera decodes keyframes only. */
  keyframeOnlyFps: number;
  /** Deadline for one whole snapshot request (connect, headers, body). */
  snapshotTimeoutMs: number;
  /** Largest snapshot body read; a larger one is a failure (too_large). */
  snapshotMaxBytes: number;
  inferTimeoutMs: number;
  /** JPEG quality of frames sent to infer and served on /camera/…/image. */
  jpegQuality: number;
  ffmpegPath: string;
  /** On SIGTERM: close CMS sockets, stop cameras; exit anyway after this long. */
  shutdownTimeoutMs: number;
}

const FILE_KEYS = ['poll_interval_ms', 'max_streams', 'target_fps', 'reconnect_interval_sec', 'max_retries'] as const;

function readConfigFile(path: string): Env {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CodedError('CONFIG_INVALID', `RELAY_CONFIG=${path} could not be read as JSON: ${err instanceof Error ? err.message : String(err)}`, 500, { variable: 'RELAY_CONFIG' });
  }
  if (typeof parsed !== 'object' || parsed === null) throw new CodedError('CONFIG_INVALID', `RELAY_CONFIG=${path} must hold a JSON object`, 500, { variable: 'RELAY_CONFIG' });
  const out: Env = {};
  for (const key of FILE_KEYS) {
    const v = (parsed as Record<string, unknown>)[key];
    if (v !== undefined) out[key.toUpperCase()] = String(v);
  }
  return out;
}

export function loadRelayConfig(env: Env = process.env): RelayConfig {
  const file = env.RELAY_CONFIG ? readConfigFile(env.RELAY_CONFIG) : {};
  try {
    return fromEnv({ ...file, ...env });
  } catch (err) {
    // A bad value from the file is named as the file's key, where the operator will look.
    const variable = err instanceof CodedError ? (err.details as { variable?: string } | undefined)?.variable : undefined;
    if (err instanceof CodedError && variable && file[variable] !== undefined && (env[variable] === undefined || env[variable] === '')) {
      throw new CodedError('CONFIG_INVALID', `${variable.toLowerCase()} in RELAY_CONFIG=${env.RELAY_CONFIG}: ${err.message.replace(/^[A-Z_]+=/, '')}`, 500, { variable: 'RELAY_CONFIG', key: variable.toLowerCase() });
    }
    throw err;
  }
}

function fromEnv(merged: Env): RelayConfig {
  const targetFps = envNumber(merged, 'TARGET_FPS', 2, { min: 0.01, max: 60 });
  return {
    host: envString(merged, 'RELAY_HOST', '0.0.0.0'),
    port: envInt(merged, 'RELAY_PORT', 8000, { min: 0, max: 65535 }),
    inferUrl: envUrl(merged, 'INFER_URL', 'http://127.0.0.1:8080'),
    inferToken: envOptionalString(merged, 'INFER_TOKEN'),
    relayToken: envOptionalString(merged, 'RELAY_TOKEN'),
    heartbeatIntervalMs: envInt(merged, 'HEARTBEAT_INTERVAL_MS', 2000, { min: 100 }),
    reconnectGraceMs: envInt(merged, 'RECONNECT_GRACE_MS', 60_000, { min: 0 }),
    pollIntervalMs: envInt(merged, 'POLL_INTERVAL_MS', 100, { min: 10 }),
    maxStreams: envInt(merged, 'MAX_STREAMS', 20, { min: 1 }),
    targetFps,
    reconnectIntervalSec: envNumber(merged, 'RECONNECT_INTERVAL_SEC', 5, { min: 0.05 }),
    maxRetries: envInt(merged, 'MAX_RETRIES', -1, { min: -1 }),
    maxBackoffSec: envNumber(merged, 'MAX_BACKOFF_SEC', 60, { min: 0.05 }),
    watchdogMs: envInt(merged, 'WATCHDOG_MS', 15_000, { min: 100 }),
    identicalFrameLimit: envInt(merged, 'IDENTICAL_FRAME_LIMIT', 50, { min: 2 }),
    keyframeOnlyFps: envNumber(merged, 'KEYFRAME_ONLY_FPS', 0.5, { min: 0 }),
    snapshotTimeoutMs: envInt(merged, 'SNAPSHOT_TIMEOUT_MS', 5000, { min: 100 }),
    snapshotMaxBytes: envInt(merged, 'SNAPSHOT_MAX_BYTES', 16 * 1024 * 1024, { min: 1024 }),
    inferTimeoutMs: envInt(merged, 'INFER_TIMEOUT_MS', 60_000, { min: 100 }),
    jpegQuality: envInt(merged, 'RELAY_JPEG_QUALITY', 85, { min: 1, max: 100 }),
    ffmpegPath: envString(merged, 'FFMPEG_PATH', 'ffmpeg'),
    shutdownTimeoutMs: envInt(merged, 'SHUTDOWN_TIMEOUT_MS', 10_000, { min: 0 }),
  };
}
