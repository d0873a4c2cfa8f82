#!/usr/bin/env node
/**
 * CMS simulator: connects to a running relay as the CMS would, subscribes one camera with
 * one archive, and prints state reports and detections as they arrive. The way to try a
 * camera and an .mpta before connecting the real CMS.
 *
 *   npm run cms -- --camera <rtsp-url | snapshot-url | video-file> --model <archive.mpta | url>
 *                  [--crop x1,y1,x2,y2] [--display id] [--camera-id id] [--model-id id]
 *                  [--session id] [--interval ms] [--relay ws://127.0.0.1:8000]
 *
 * A local video file is served to the relay over a real RTSP endpoint that this command
 * starts. While it runs, type `session <id>`, `session null`, `state` or `quit`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { startRtspServer, type RtspTestServer } from '@detector-worker/testkit/rtsp-server';

const USAGE = `usage: npm run cms -- --camera <rtsp-url|snapshot-url|video-file> --model <archive.mpta|url>
       [--crop x1,y1,x2,y2] [--display display-001] [--camera-id cam-001] [--model-id 101]
       [--session <id>] [--interval <snapshot ms>] [--relay ws://127.0.0.1:8000] [--quiet]`;

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    camera: { type: 'string' },
    model: { type: 'string' },
    crop: { type: 'string' },
    display: { type: 'string', default: 'display-001' },
    'camera-id': { type: 'string', default: 'cam-001' },
    'model-id': { type: 'string', default: '101' },
    session: { type: 'string' },
    interval: { type: 'string', default: '1000' },
    relay: { type: 'string', default: `ws://127.0.0.1:${process.env.RELAY_PORT ?? '8000'}/` },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.camera || !values.model) fail('--camera and --model are required');

const modelUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(values.model) ? values.model : pathToFileURL(resolve(values.model)).href;
if (modelUrl.startsWith('file:') && !existsSync(new URL(modelUrl))) fail(`no archive at ${values.model}`);

let rtsp: RtspTestServer | undefined;
const camera: { rtspUrl?: string; snapshotUrl?: string; snapshotInterval?: number } = {};
if (/^rtsps?:\/\//.test(values.camera)) camera.rtspUrl = values.camera;
else if (/^https?:\/\//.test(values.camera)) {
  camera.snapshotUrl = values.camera;
  camera.snapshotInterval = Number(values.interval);
} else if (existsSync(values.camera)) {
  rtsp = await startRtspServer(resolve(values.camera));
  camera.rtspUrl = rtsp.url;
  console.log(`serving ${values.camera} over RTSP at ${rtsp.url}`);
} else fail(`--camera is neither an rtsp:// or http(s):// URL nor a file: ${values.camera}`);

let crop = {};
if (values.crop) {
  const parts = values.crop.split(',').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0)) fail('--crop takes four non-negative integers x1,y1,x2,y2');
  crop = { cropX1: parts[0], cropY1: parts[1], cropX2: parts[2], cropY2: parts[3] };
}

const subscriptionIdentifier = `${values.display};${values['camera-id']}`;
const modelId = /^\d+$/.test(values['model-id']!) ? Number(values['model-id']) : values['model-id']!;
const ws = new WebSocket(values.relay!);
const send = (m: unknown) => ws.send(JSON.stringify(m));
const time = () => new Date().toISOString().slice(11, 23);

ws.on('open', () => {
  console.log(`connected to ${values.relay}; subscribing ${subscriptionIdentifier} with ${modelUrl}`);
  send({ type: 'subscribe', payload: { subscriptionIdentifier, ...camera, modelUrl, modelName: 'cms-simulator', modelId, ...crop } });
  if (values.session) send({ type: 'setSessionId', payload: { displayIdentifier: values.display, sessionId: /^\d+$/.test(values.session) ? Number(values.session) : values.session } });
});
let lastOnline: boolean | undefined;
/** imageDetection messages so far: vehicle visits when the pipeline tracks. */
let visits = 0;
ws.on('message', (data) => {
  const m = JSON.parse(data.toString()) as Record<string, any>;
  if (m.type === 'stateReport') {
    const c = (m.cameraConnections as Array<Record<string, unknown>>).find((x) => x.subscriptionIdentifier === subscriptionIdentifier);
    const online = c ? Boolean(c.online) : undefined;
    if (!values.quiet || online !== lastOnline) console.log(`${time()} state: cpu ${m.cpuUsage}% mem ${m.memoryUsage}% gpu ${m.gpuUsage ?? '-'} | ${c ? (online ? 'online' : 'offline') : 'not subscribed yet (or refused: see the relay log)'}`);
    lastOnline = online;
  } else if (m.type === 'imageDetection') {
    // With tracking (the default) each imageDetection is one vehicle visit; without, one frame.
    visits++;
    console.log(`${time()} visit ${visits}: a vehicle arrived @${m.timestamp}: ${JSON.stringify(m.data.detection)}`);
  } else if (m.type === 'patchSession') {
    console.log(`${time()} visit update (patchSession ${m.sessionId}): ${JSON.stringify(m.data)}`);
    send({ type: 'patchSessionResult', payload: { sessionId: m.sessionId, success: true, message: 'simulated' } });
  } else console.log(`${time()} ${JSON.stringify(m)}`);
});
ws.on('error', (err) => {
  console.error(`relay connection failed (${err.message}): is it running? (npm start)`);
  void shutdown(1);
});
ws.on('close', () => void shutdown(0));

if (process.stdin.isTTY) {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'session') send({ type: 'setSessionId', payload: { displayIdentifier: values.display, sessionId: arg === undefined || arg === 'null' ? null : /^\d+$/.test(arg) ? Number(arg) : arg } });
    else if (cmd === 'state') send({ type: 'requestState' });
    else if (cmd === 'quit') void shutdown(0);
    else if (cmd) console.log('commands: session <id|null>, state, quit');
  });
}

let done = false;
async function shutdown(code: number): Promise<void> {
  if (done) return;
  done = true;
  if (ws.readyState === WebSocket.OPEN) {
    send({ type: 'unsubscribe', payload: { subscriptionIdentifier } });
    ws.close();
  }
  await rtsp?.stop();
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
