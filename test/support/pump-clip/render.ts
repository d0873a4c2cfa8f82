/**
 * Renders a Scene with one ffmpeg run: a synthetic background, each vehicle cropped out of its
 * fixture photo, scaled and overlaid along its keyframes, then light noise; the same frames go
 * to an IP-camera-like H.264 mp4 and to numbered JPEGs for snapshot cameras.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fixturePath } from '@detector-worker/testkit/fixtures';
import { frameCount, snapEven, vehicleSize, type Keyframe, type Scene } from './timeline.js';

export interface RenderOptions {
  /** Write the mp4 (default true). */
  mp4?: boolean;
  /** Write the JPEG frames (default true). */
  jpegs?: boolean;
  /** ffmpeg mjpeg quality, 2 (best) .. 31 (default 4: ~90 KB per 720p frame). */
  jpegQuality?: number;
  /** mp4 bitrate cap in kbit/s (default 2000, like a 720p IP camera; the noise would otherwise take 5-15 Mbit/s). */
  bitrateKbps?: number;
  /** Resolves a fixture-relative image path (default: fixturePath, which throws when missing). */
  resolveImage?: (relative: string) => string;
  /** Kill ffmpeg after this long (default 120 s). */
  timeoutMs?: number;
}

export interface RenderedClip {
  scene: Scene;
  mp4: string | null;
  framesDir: string | null;
  frameCount: number;
  fps: number;
  /** Path of JPEG frame n (frame n shows t = n / fps). */
  framePath(n: number): string;
  /** Path of the JPEG showing time t (clamped to the clip). */
  frameAt(t: number): string;
  renderMs: number;
}

/** ffmpeg expression of piecewise-linear keyframes in t, snapped like timeline.snapEven. */
export function keyframeExpr(keyframes: Keyframe[], axis: 'x' | 'y'): string {
  const num = (v: number) => { const r = Math.round(v * 1e6) / 1e6; return r < 0 ? `(${r})` : String(r); };
  const last = keyframes[keyframes.length - 1];
  if (!last) throw new Error('vehicle without keyframes');
  let expr = num(last[axis]);
  for (let i = keyframes.length - 2; i >= 0; i--) {
    const a = keyframes[i]!;
    const b = keyframes[i + 1]!;
    const slope = b.t > a.t ? (b[axis] - a[axis]) / (b.t - a.t) : 0;
    const seg = slope === 0 ? num(a[axis]) : `${num(a[axis])}+(t-${num(a.t)})*${num(slope)}`;
    expr = `if(lt(t,${num(b.t)}),${seg},${expr})`;
  }
  return `2*floor((${expr}+0.000001)/2)`;
}

export interface FfmpegPlan {
  /** Input image paths, in input order after the lavfi background (input 0). */
  images: string[];
  filter: string;
}

/** The single filter graph: `[vout]` for the mp4 and `[jout]` for the JPEGs. */
export function buildFilterGraph(scene: Scene, resolveImage: (relative: string) => string): FfmpegPlan {
  const images: string[] = [];
  const chains: string[] = [];
  const bg = scene.background;
  const draw = bg.rects.map((r) => `drawbox=x=${r.x}:y=${r.y}:w=${r.w}:h=${r.h}:color=${r.color}:t=fill`);
  // Drawn once on the first frame and overlaid on every frame: drawbox per frame costs more than the whole encode.
  if (draw.length) chains.push(`[0:v]split=2[base][still]`, `[still]trim=end_frame=1,${draw.join(',')}[painted]`, `[base][painted]overlay=eof_action=repeat[bg0]`);
  else chains.push(`[0:v]null[bg0]`);
  let prev = 'bg0';
  scene.vehicles.forEach((v, i) => {
    images.push(resolveImage(v.source.image));
    const [x1, y1, x2, y2] = v.source.box;
    const { w, h } = vehicleSize(v);
    const first = v.keyframes[0];
    const last = v.keyframes[v.keyframes.length - 1];
    if (!first || !last) throw new Error(`vehicle ${v.id} has no keyframes`);
    chains.push(`[${i + 1}:v]crop=${x2 - x1}:${y2 - y1}:${x1}:${y1},scale=${w}:${h}[car${i}]`);
    const x = keyframeExpr(v.keyframes, 'x');
    const y = keyframeExpr(v.keyframes, 'y');
    chains.push(`[${prev}][car${i}]overlay=x='${x}':y='${y}':eval=frame:enable='between(t,${first.t},${last.t})'[bg${i + 1}]`);
    prev = `bg${i + 1}`;
  });
  const noise = bg.noise > 0 ? `noise=alls=${bg.noise}:allf=t,` : '';
  chains.push(`[${prev}]${noise}format=yuv420p,split=2[vout][jout]`);
  return { images, filter: chains.join(';') };
}

export function ffmpegAvailable(): boolean {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-version'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

/** Renders `scene` into `outDir` (clip.mp4 and frames/000000.jpg …); rejects with ffmpeg's stderr tail. */
export async function renderPumpClip(scene: Scene, outDir: string, options: RenderOptions = {}): Promise<RenderedClip> {
  const wantMp4 = options.mp4 ?? true;
  const wantJpegs = options.jpegs ?? true;
  if (!wantMp4 && !wantJpegs) throw new Error('renderPumpClip: nothing to write');
  const plan = buildFilterGraph(scene, options.resolveImage ?? fixturePath);
  const framesDir = join(outDir, 'frames');
  const mp4 = join(outDir, 'clip.mp4');
  await mkdir(wantJpegs ? framesDir : outDir, { recursive: true });
  const size = `${scene.width}x${scene.height}`;
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=${scene.background.color}:s=${size}:r=${scene.fps}:d=${scene.durationS}`,
    ...plan.images.flatMap((p) => ['-i', p]),
    '-filter_complex', plan.filter];
  if (wantMp4) {
    args.push('-map', '[vout]', '-c:v', 'libx264', '-preset', 'ultrafast', ...bitrateArgs(options.bitrateKbps ?? 2000),
      '-bf', '0', '-g', String(2 * scene.fps), '-keyint_min', String(2 * scene.fps), '-sc_threshold', '0',
      '-pix_fmt', 'yuv420p', '-movflags', '+faststart', mp4);
  } else {
    args.push('-map', '[vout]', '-f', 'null', '-');
  }
  if (wantJpegs) args.push('-map', '[jout]', '-q:v', String(options.jpegQuality ?? 4), '-start_number', '0', join(framesDir, '%06d.jpg'));
  else args.push('-map', '[jout]', '-f', 'null', '-');

  const started = Date.now();
  await runFfmpeg(args, options.timeoutMs ?? 120_000);
  const count = frameCount(scene);
  const framePath = (n: number) => {
    if (!wantJpegs) throw new Error('rendered without JPEG frames');
    return join(framesDir, `${String(Math.max(0, Math.min(count - 1, Math.floor(n)))).padStart(6, '0')}.jpg`);
  };
  return {
    scene,
    mp4: wantMp4 ? mp4 : null,
    framesDir: wantJpegs ? framesDir : null,
    frameCount: count,
    fps: scene.fps,
    framePath,
    frameAt: (t: number) => framePath(Math.floor(t * scene.fps + 1e-6)),
    renderMs: Date.now() - started,
  };
}

const bitrateArgs = (kbps: number) => ['-b:v', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${2 * kbps}k`];

function runFfmpeg(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}
