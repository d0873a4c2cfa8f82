/**
 * Piscina worker: owns onnxruntime sessions for the pipeline nodes it has seen, keyed by
 * session key. Tensor building, `session.run` and output decoding happen here so the main
 * thread only does I/O and image work (which libvips runs on its own threads).
 */
import { threadId } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { hwcToChw, hwcToChwPlaced } from '../inference/letterbox.js';
import { decodeClassification, decodeDetections, decodeText } from '../inference/decoders/index.js';
import type { ClassifyReply, ClassifyTask, DetectReply, DetectTask, LiveSet, LoadReply, LoadTask, OcrReply, OcrTask, SessionSpec, TensorInfo, WorkerTask } from './tasks.js';

const sessions = new Map<string, Promise<ort.InferenceSession>>();
/** One reusable input buffer per element count: a worker runs one task at a time. */
const inputBuffers = new Map<number, Float32Array>();
/**
 * What each input buffer's letterbox pad was last written for. A camera sends frames of one
 * size, so from the second frame on the pad bands already hold the right values and only the
 * image area is written (44 % fewer writes for a 640x360 frame in a 640x640 tensor).
 */
const padWritten = new Map<Float32Array, string>();
/** Class filters as sets, per session (the task carries an array; a set per frame is waste). */
const classFilters = new Map<string, ReadonlySet<number>>();
let seenEpoch = -1;

function prune(live: LiveSet): void {
  if (live.epoch === seenEpoch) return;
  seenEpoch = live.epoch;
  const keep = new Set(live.keys);
  for (const [key, session] of sessions) {
    if (keep.has(key)) continue;
    sessions.delete(key);
    classFilters.delete(key);
    charsets.delete(key);
    session.then((s) => s.release()).catch(() => undefined);
  }
}

function session(spec: SessionSpec): Promise<ort.InferenceSession> {
  let s = sessions.get(spec.key);
  if (!s) {
    s = ort.InferenceSession.create(spec.modelPath, {
      intraOpNumThreads: spec.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Old exporters list weights as graph inputs; ORT then warns once per initializer.
      logSeverityLevel: 3,
    });
    sessions.set(spec.key, s);
    // A failed create must not stay cached: the next load retries.
    s.catch(() => sessions.delete(spec.key));
  }
  return s;
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => ({
    name: m.name,
    type: m.isTensor ? String(m.type) : 'non-tensor',
    dims: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) : [],
  }));
}

async function load(task: LoadTask): Promise<LoadReply> {
  const t0 = performance.now();
  const s = await session(task.session);
  const t1 = performance.now();
  const inputs = describe(s.inputMetadata);
  const outputs = describe(s.outputMetadata);
  const first = inputs[0];
  if (first && (first.type === 'float32' || first.type === 'uint8')) {
    // Warm-up run so the first real request does not pay for lazy allocations.
    const nhwc = first.type === 'uint8';
    const channelAxis = nhwc ? 3 : 1;
    const [hAxis, wAxis] = nhwc ? [1, 2] : [2, 3];
    const dims = first.dims.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : i === channelAxis ? 3 : i === hAxis ? task.spatialHint[0] : i === wAxis ? task.spatialHint[1] : 1));
    const size = dims.reduce((a, b) => a * b, 1);
    if (inputs.length === 1 && size > 0 && size < 64 * 1024 * 1024) {
      // A model that refuses the guessed shape still loads; the real check is at the first frame.
      await s.run({ [first.name]: nhwc ? new ort.Tensor('uint8', new Uint8Array(size), dims) : new ort.Tensor('float32', new Float32Array(size), dims) }).catch(() => undefined);
    }
  }
  return { threadId, inputs, outputs, createMs: t1 - t0, warmMs: performance.now() - t1 };
}

function inputTensor(task: DetectTask | ClassifyTask): { tensor: ort.Tensor; ms: number } {
  const t0 = performance.now();
  const width = task.placement?.tensorWidth ?? task.width;
  const height = task.placement?.tensorHeight ?? task.height;
  const count = 3 * width * height;
  let buffer = inputBuffers.get(count);
  if (!buffer) {
    buffer = new Float32Array(count);
    inputBuffers.set(count, buffer);
  }
  if (task.placement) {
    const p = task.placement;
    const layout = `${p.tensorWidth}x${p.tensorHeight}+${p.left}+${p.top}:${task.width}x${task.height}:${p.padValue}:${task.norm.channelOrder}:${task.norm.mean?.join() ?? ''}:${task.norm.std?.join() ?? ''}`;
    const padReady = padWritten.get(buffer) === layout;
    // Forget the layout first: should the build throw half-way, the next task rewrites the pad.
    padWritten.delete(buffer);
    hwcToChwPlaced(task.pixels, task.width, task.height, p, task.norm, buffer, { padReady });
    padWritten.set(buffer, layout);
  } else {
    padWritten.delete(buffer);
    hwcToChw(task.pixels, task.width, task.height, task.norm, buffer);
  }
  return { tensor: new ort.Tensor('float32', buffer, [1, 3, height, width]), ms: performance.now() - t0 };
}

function firstOutput(out: ort.InferenceSession.ReturnType): ort.Tensor {
  const tensor = Object.values(out)[0];
  if (!tensor) throw new Error('model produced no output');
  return tensor;
}

function classFilterOf(task: DetectTask): ReadonlySet<number> | null {
  if (!task.classFilter) return null;
  let set = classFilters.get(task.session.key);
  if (!set) {
    set = new Set(task.classFilter);
    classFilters.set(task.session.key, set);
  }
  return set;
}

async function detect(task: DetectTask): Promise<DetectReply> {
  const s = await session(task.session);
  const { tensor, ms: tensorMs } = inputTensor(task);
  const t0 = performance.now();
  const out = firstOutput(await s.run({ [task.inputName]: tensor }));
  const t1 = performance.now();
  const detections = decodeDetections(task.format, out.data as Float32Array, out.dims, {
    confThreshold: task.confThreshold,
    iouThreshold: task.iouThreshold,
    classFilter: classFilterOf(task),
    ...(task.numClasses !== undefined ? { numClasses: task.numClasses } : {}),
  });
  return { detections, tensorMs, inferMs: t1 - t0, decodeMs: performance.now() - t1 };
}

async function classify(task: ClassifyTask): Promise<ClassifyReply> {
  const s = await session(task.session);
  const { tensor, ms: tensorMs } = inputTensor(task);
  const t0 = performance.now();
  const out = firstOutput(await s.run({ [task.inputName]: tensor }));
  const inferMs = performance.now() - t0;
  const { classIndex, confidence } = decodeClassification(out.data as Float32Array, task.softmax);
  return { classIndex, confidence, tensorMs, inferMs };
}

const charsets = new Map<string, OcrTask['charset']>();

function ocrTensor(task: OcrTask): ort.Tensor {
  const { items, width, height, channels } = task;
  const pixelCount = items * width * height;
  if (task.pixels.length !== pixelCount * 3) throw new Error(`OCR pixels hold ${task.pixels.length} bytes, expected ${pixelCount * 3}`);
  if (task.input === 'uint8-nhwc') {
    if (channels === 3) return new ort.Tensor('uint8', task.pixels, [items, height, width, 3]);
    const grey = new Uint8Array(pixelCount);
    for (let i = 0; i < pixelCount; i++) grey[i] = Math.round(0.299 * task.pixels[i * 3]! + 0.587 * task.pixels[i * 3 + 1]! + 0.114 * task.pixels[i * 3 + 2]!);
    return new ort.Tensor('uint8', grey, [items, height, width, 1]);
  }
  const per = 3 * width * height;
  const buffer = new Float32Array(items * per);
  for (let i = 0; i < items; i++) {
    hwcToChw(task.pixels.subarray(i * width * height * 3, (i + 1) * width * height * 3), width, height, task.norm, buffer.subarray(i * per, (i + 1) * per));
  }
  return new ort.Tensor('float32', buffer, [items, 3, height, width]);
}

async function ocr(task: OcrTask): Promise<OcrReply> {
  const s = await session(task.session);
  const t0 = performance.now();
  const tensor = ocrTensor(task);
  const t1 = performance.now();
  const out = firstOutput(await s.run({ [task.inputName]: tensor }));
  const t2 = performance.now();
  let charset = charsets.get(task.session.key);
  if (!charset) {
    charset = task.charset;
    charsets.set(task.session.key, charset);
  }
  const reads = Array.from({ length: task.items }, (_, i) => decodeText(task.layout, out.data as Float32Array, out.dims, i, charset));
  return { reads, tensorMs: t1 - t0, inferMs: t2 - t1, decodeMs: performance.now() - t2 };
}

export default async function run(task: WorkerTask): Promise<LoadReply | DetectReply | ClassifyReply | OcrReply> {
  prune(task.live);
  switch (task.kind) {
    case 'load':
      return load(task);
    case 'detect':
      return detect(task);
    case 'classify':
      return classify(task);
    case 'ocr':
      return ocr(task);
  }
}
