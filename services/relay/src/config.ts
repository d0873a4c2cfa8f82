/**
 * Relay configuration: the environment, plus the original worker's config.json keys
 * (`poll_interval_ms`, `max_streams`, `target_fps`, `reconnect_interval_sec`, `max_retries`)
 * from the file named by RELAY_CONFIG. Environment variables win over the file.
 */
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import { LoggingEnvFields, parseEnv, type Env } from '@detector-worker/shared/config';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { coded } from './error-codes.js';
import type { DetectFrames } from './infer-link/frame-images.js';

export interface RelayConfig {
  host: string;
  port: number;
  /** INFER_URL: one infer URL or several, comma-separated. */
  inferUrl: string;
  inferDnsRefreshMs: number;
  /** Quiet scenes (no track, no motion): a detect frame at most this often. */
  idleDetectIntervalMs: number;
  /** Quiet scenes: read the camera at KEYFRAME_ONLY_FPS until something moves (RTSP through the keyframe gate; off by default). */
  idleSlowCamera: boolean;
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
  /** How detect-stage frames travel to infer: raw RGB (infer decodes nothing) or JPEG (~14x fewer bytes). */
  detectFrames: DetectFrames;
  /** Width of the small copy ffmpeg makes of each RTSP frame for motion and detect images (0: none). */
  framePreviewWidth: number;
  ffmpegPath: string;
  /** On SIGTERM: close CMS sockets, stop cameras; exit anyway after this long. */
  shutdownTimeoutMs: number;
}

/** The original worker's config.json keys, read from the RELAY_CONFIG file; each is the lower-case name of a variable. */
export const RELAY_CONFIG_FILE_KEYS = ['poll_interval_ms', 'max_streams', 'target_fps', 'reconnect_interval_sec', 'max_retries'] as const;

const int = (defaultValue: number, minimum: number, description: string, maximum?: number) =>
  Type.Integer({ default: defaultValue, minimum, ...(maximum === undefined ? {} : { maximum }), description });
const num = (defaultValue: number, minimum: number, description: string, maximum?: number) =>
  Type.Number({ default: defaultValue, minimum, ...(maximum === undefined ? {} : { maximum }), description });

/** Every variable the relay reads: name, type, bounds, default (README "## Configuration"). */
export const RelayEnv = Type.Object({
  RELAY_HOST: Type.String({ default: '0.0.0.0', description: 'relay bind address' }),
  RELAY_PORT: int(8000, 0, 'relay WebSocket + HTTP port', 65535),
  INFER_URL: Type.String({ default: 'http://127.0.0.1:8080', format: 'http-url-list', description: 'where the relay reaches infer: one URL or several, comma-separated; an http host name stands for every address it resolves to (a headless Service)' }),
  INFER_DNS_REFRESH_MS: int(10_000, 500, 'how often infer host names are looked up again'),
  IDLE_DETECT_INTERVAL_MS: int(3000, 0, 'while a tracking group sees no vehicle and no motion, a detect frame at most this often (0: every frame)'),
  IDLE_SLOW_CAMERA: Type.Boolean({ default: true, description: 'read a camera whose scene has been quiet for 4 s at KEYFRAME_ONLY_FPS (RTSP: keyframes only, through a keyframe gate that needs no reopening) until motion or a track; false: one ffmpeg per camera decoding every frame' }),
  INFER_TOKEN: Type.Optional(Type.String({ description: 'bearer token sent to infer' })),
  RELAY_TOKEN: Type.Optional(Type.String({ description: 'token the CMS must present' })),
  RELAY_CONFIG: Type.Optional(Type.String({ description: 'path of an original-style config.json; environment variables win' })),
  HEARTBEAT_INTERVAL_MS: int(2000, 100, 'state report period'),
  RECONNECT_GRACE_MS: int(60_000, 0, 'how long subscriptions outlive a dropped CMS connection'),
  POLL_INTERVAL_MS: int(100, 10, 'frame-processing interval (file key poll_interval_ms)'),
  MAX_STREAMS: int(20, 1, 'subscriptions accepted (file key max_streams)'),
  TARGET_FPS: num(2, 0.01, 'frames per second sent to infer per RTSP camera (file key target_fps)', 60),
  RECONNECT_INTERVAL_SEC: num(5, 0.05, 'first reconnect delay, doubled per failure (file key reconnect_interval_sec)'),
  MAX_RETRIES: int(-1, -1, 'reconnect attempts, -1 = forever (file key max_retries)'),
  MAX_BACKOFF_SEC: num(60, 0.05, 'reconnect delay cap'),
  WATCHDOG_MS: int(15_000, 100, 'a reader with no new frame this long is restarted'),
  IDENTICAL_FRAME_LIMIT: int(50, 2, 'the same RTSP frame this many times in a row counts as a stall'),
  KEYFRAME_ONLY_FPS: num(0.5, 0, 'at or below this rate RTSP cameras decode keyframes only'),
  SNAPSHOT_TIMEOUT_MS: int(5000, 100, 'deadline for one whole snapshot request'),
  SNAPSHOT_MAX_BYTES: int(16 * 1024 * 1024, 1024, 'largest snapshot body read'),
  INFER_TIMEOUT_MS: int(60_000, 100, 'infer request timeout'),
  RELAY_JPEG_QUALITY: int(85, 1, 'JPEG quality of frames from ffmpeg and of crops', 100),
  DETECT_FRAMES: Type.Union([Type.Literal('raw'), Type.Literal('jpeg')], {
    default: 'raw',
    description: 'how detect-stage frames travel to infer: raw RGB pixels (infer decodes nothing) or jpeg (about 14x fewer bytes, for links where bandwidth counts)',
  }),
  FRAME_PREVIEW_WIDTH: int(320, 0, 'RTSP cameras: ffmpeg also scales each frame to this width, and motion checks and detect-stage images are cut from that copy instead of decoding the JPEG again (0: off; a crop with too few pixels in it for the detector uses the JPEG)', 4096),
  FFMPEG_PATH: Type.String({ default: 'ffmpeg', description: 'ffmpeg binary' }),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 0, 'on SIGTERM: how long to wait for CMS sockets and ffmpeg children'),
  ...LoggingEnvFields,
});

function readConfigFile(path: string): Env {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw coded('CONFIG_INVALID', `RELAY_CONFIG=${path} could not be read as JSON: ${errorMessage(err)}`, { variable: 'RELAY_CONFIG' });
  }
  if (typeof parsed !== 'object' || parsed === null) throw coded('CONFIG_INVALID', `RELAY_CONFIG=${path} must hold a JSON object`, { variable: 'RELAY_CONFIG' });
  const out: Env = {};
  for (const key of RELAY_CONFIG_FILE_KEYS) {
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
      throw coded('CONFIG_INVALID', `${variable.toLowerCase()} in RELAY_CONFIG=${env.RELAY_CONFIG}: ${err.message.replace(/^[A-Z_]+=/, '')}`, {
        variable: 'RELAY_CONFIG',
        key: variable.toLowerCase(),
      });
    }
    throw err;
  }
}

function fromEnv(merged: Env): RelayConfig {
  const e = parseEnv(RelayEnv, merged);
  return {
    host: e.RELAY_HOST,
    port: e.RELAY_PORT,
    inferUrl: e.INFER_URL,
    inferDnsRefreshMs: e.INFER_DNS_REFRESH_MS,
    idleDetectIntervalMs: e.IDLE_DETECT_INTERVAL_MS,
    idleSlowCamera: e.IDLE_SLOW_CAMERA,
    inferToken: e.INFER_TOKEN,
    relayToken: e.RELAY_TOKEN,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    reconnectGraceMs: e.RECONNECT_GRACE_MS,
    pollIntervalMs: e.POLL_INTERVAL_MS,
    maxStreams: e.MAX_STREAMS,
    targetFps: e.TARGET_FPS,
    reconnectIntervalSec: e.RECONNECT_INTERVAL_SEC,
    maxRetries: e.MAX_RETRIES,
    maxBackoffSec: e.MAX_BACKOFF_SEC,
    watchdogMs: e.WATCHDOG_MS,
    identicalFrameLimit: e.IDENTICAL_FRAME_LIMIT,
    keyframeOnlyFps: e.KEYFRAME_ONLY_FPS,
    snapshotTimeoutMs: e.SNAPSHOT_TIMEOUT_MS,
    snapshotMaxBytes: e.SNAPSHOT_MAX_BYTES,
    inferTimeoutMs: e.INFER_TIMEOUT_MS,
    jpegQuality: e.RELAY_JPEG_QUALITY,
    detectFrames: e.DETECT_FRAMES,
    framePreviewWidth: e.FRAME_PREVIEW_WIDTH,
    ffmpegPath: e.FFMPEG_PATH,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  };
}
