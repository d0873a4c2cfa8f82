/**
 * The gated RTSP reader's own failure paths, with a stand-in for ffmpeg (a script that plays
 * the demuxer or the decoder by its arguments): a demuxer whose output is not MPEG-TS, and a
 * decoder that stops reading while the demuxer keeps writing. Each ends the stream with its
 * reason and kind, stops both children, and leaves the reader backing off to try again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { RtspReader } from './rtsp-reader.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The demuxer is the ffmpeg that copies the stream (`-c:v copy`); the decoder reads stdin and never answers. */
const FAKE_FFMPEG = `
const demuxer = process.argv.includes('copy');
const mode = process.argv[2];
if (!demuxer) setInterval(() => undefined, 1000); // a decoder that never reads its stdin
else if (mode === 'garbage') {
  process.stdout.write(Buffer.alloc(188 * 4, 0x20)); // not a sync byte in sight
  setInterval(() => undefined, 1000);
} else {
  // MPEG-TS null packets (PID 0x1FFF) as fast as the pipe takes them.
  const run = Buffer.alloc(188 * 1024, 0xff);
  for (let i = 0; i < 1024; i++) run.set([0x47, 0x1f, 0xff, 0x10], i * 188);
  const write = () => { while (process.stdout.write(run)); process.stdout.once('drain', write); };
  write();
}
`;

async function fakeFfmpeg(dir: string, mode: 'garbage' | 'flood'): Promise<string> {
  const script = join(dir, 'fake-ffmpeg.mjs');
  await writeFile(script, FAKE_FFMPEG);
  const wrapper = join(dir, `ffmpeg-${mode}`);
  await writeFile(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${script}" ${mode} "$@"\n`);
  await chmod(wrapper, 0o755);
  return wrapper;
}

function gatedReader(ffmpegPath: string): RtspReader {
  return new RtspReader(
    { kind: 'rtsp', url: 'rtsp://127.0.0.1:9/live' },
    { reconnectIntervalSec: 30, maxBackoffSec: 30, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 5, ffmpegPath, keyframeOnlyFps: 0.5, jpegQuality: 80, gated: true },
    pino({ level: 'silent' }),
    2,
  );
}

async function endsWith(reader: RtspReader, kind: 'error' | 'stalled'): Promise<void> {
  for (let i = 0; i < 1000 && !reader.stats.failures[kind]; i++) await sleep(10);
  assert.equal(reader.stats.failures[kind], 1, `one ${kind} failure: ${JSON.stringify(reader.stats)}`);
  assert.equal(reader.state, 'backoff', 'waits to try again');
  // Both children go (SIGTERM, SIGKILL 2 s later for one that ignores it).
  for (let i = 0; i < 300 && reader.processRunning; i++) await sleep(10);
  assert.equal(reader.processRunning, false, 'the decoder was stopped');
  assert.equal(reader.gateState, undefined, 'the demuxer and the gate were let go');
}

const cases = [
  { name: 'a demuxer output that is not MPEG-TS ends the stream as an error', mode: 'garbage', kind: 'error', reason: /camera stream unreadable: lost MPEG-TS sync/ },
  { name: 'a decoder that stops reading ends the stream as stalled once its backlog passes the cap', mode: 'flood', kind: 'stalled', reason: /the decoder stopped reading/ },
] as const;

for (const c of cases) {
  test(`gated reader: ${c.name}; both children stopped, the reader backing off`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fake-ffmpeg-'));
    const reader = gatedReader(await fakeFfmpeg(dir, c.mode));
    try {
      reader.start();
      await endsWith(reader, c.kind);
      assert.match(reader.stats.lastError ?? '', c.reason);
    } finally {
      await reader.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
