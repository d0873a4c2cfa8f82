/**
 * Frame previews through the RTSP reader, with a stand-in for ffmpeg that writes JPEGs on
 * stdout and, on fd 3, what the case asks: the matching previews, bytes that are not PPM, or
 * nothing. Frames always arrive; they carry a preview only when one matched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import type { Frame } from './frame.js';
import { RtspReader } from './rtsp-reader.js';

const FRAMES = 5;

/** Writes FRAMES JPEGs (each its own colour, so none repeats) 50 ms apart, and fd 3 per mode. */
const FAKE_FFMPEG = `
import { readFileSync, writeSync } from 'node:fs';
const [mode, dir] = process.argv.slice(2);
let i = 0;
const timer = setInterval(() => {
  process.stdout.write(readFileSync(dir + '/' + i + '.jpg'));
  if (mode === 'previews') writeSync(3, Buffer.concat([Buffer.from('P6\\n8 4\\n255\\n'), Buffer.alloc(8 * 4 * 3, i)]));
  if (mode === 'garbage') writeSync(3, Buffer.from('GIF89a not a PPM at all'));
  if (++i === ${FRAMES}) { clearInterval(timer); setInterval(() => undefined, 1000); }
}, 50);
`;

async function standIn(dir: string, mode: string): Promise<string> {
  for (let i = 0; i < FRAMES; i++) {
    await sharp({ create: { width: 32, height: 16, channels: 3, background: { r: 10 * i, g: 0, b: 0 } } }).jpeg().toFile(join(dir, `${i}.jpg`));
  }
  const script = join(dir, 'fake-ffmpeg.mjs');
  await writeFile(script, FAKE_FFMPEG);
  const wrapper = join(dir, `ffmpeg-${mode}`);
  await writeFile(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${script}" ${mode} "${dir}"\n`);
  await chmod(wrapper, 0o755);
  return wrapper;
}

const cases = [
  { mode: 'previews', name: 'each frame with its preview', withPreview: FRAMES, warned: false },
  { mode: 'garbage', name: 'previews that are not PPM: frames without them, one warning', withPreview: 0, warned: true },
  { mode: 'silent', name: 'no previews at all: each frame goes alone after a short wait', withPreview: 0, warned: false },
] as const;

for (const c of cases) {
  test(`RTSP reader previews: ${c.name}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fake-ffmpeg-'));
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) });
    const reader = new RtspReader(
      { kind: 'rtsp', url: 'rtsp://127.0.0.1:9/live' },
      { reconnectIntervalSec: 30, maxBackoffSec: 30, maxRetries: -1, watchdogMs: 60_000, identicalFrameLimit: 50, ffmpegPath: await standIn(dir, c.mode), keyframeOnlyFps: 0.5, jpegQuality: 80, previewWidth: 8 },
      logger,
      2,
    );
    const frames: Frame[] = [];
    reader.on('frame', (f) => frames.push(f));
    try {
      reader.start();
      for (let i = 0; i < 300 && frames.length < FRAMES; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(frames.length, FRAMES, 'every frame arrived');
      const previews = frames.filter((f) => f.preview);
      assert.equal(previews.length, c.withPreview);
      // Each preview is its own frame's (the stand-in fills preview i with the value i).
      previews.forEach((f, i) => assert.deepEqual([f.preview!.width, f.preview!.height, f.preview!.rgb[0], f.seq], [8, 4, i, i + 1]));
      assert.equal(warnings.some((w) => /previews unreadable/.test(w)), c.warned, warnings.join('; '));
      assert.equal(reader.state, 'streaming');
    } finally {
      await reader.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
