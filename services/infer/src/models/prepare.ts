/**
 * Turns a validated archive into a runnable pipeline: reads each ONNX model's metadata
 * (class names, input size, task), creates its sessions on every worker, picks the output
 * decoder and resolves trigger classes to class indices. Anything that would only fail at
 * inference time fails here, at load, with the node's JSON path.
 */
import { readFile } from 'node:fs/promises';
import { CodedError } from '@detector-worker/shared/errors';
import type { PipelineFile, PipelineNode } from '@detector-worker/shared/pipeline/schema';
import { parseImgsz, parseLabelsFile, parseUltralyticsNames } from '../inference/class-names.js';
import { detectOutputFormat } from '../inference/decoders/index.js';
import { readOnnxMetadata } from '../inference/onnx-metadata.js';
import type { OnnxMetadata, OutputFormat } from '../inference/types.js';
import type { FitTarget } from '../images/frame-image.js';
import type { InferencePool } from '../workers/pool.js';
import type { Normalisation, SessionSpec } from '../workers/tasks.js';
import type { LoadedArchive } from './mpta-layout.js';

export interface PreparedNode {
  spec: PipelineNode;
  /** JSON path of the node in pipeline.json. */
  path: string;
  session: SessionSpec;
  task: 'detect' | 'classify';
  format: OutputFormat;
  classNames: string[];
  inputName: string;
  fit: FitTarget;
  norm: Normalisation;
  iouThreshold: number;
  softmax: boolean | 'auto';
  /** Own-class indices kept by a detector (its triggerClasses among its classes); null keeps all. */
  classFilter: number[] | null;
  branches: PreparedNode[];
  modelBytes: number;
  /**
   * The node's image will be cropped at full resolution (crop branches, saved regions), so
   * decode it fully once and letterbox from those pixels rather than decoding twice.
   */
  decodeFullFrame: boolean;
}

export interface PreparedPipeline {
  key: string;
  file: PipelineFile;
  root: PreparedNode;
  sessionKeys: string[];
  modelBytes: number;
}

export interface PrepareOptions {
  intraOpThreads: number;
}

const DEFAULT_DETECT_SIZE = 640;
const DEFAULT_CLASSIFY_SIZE = 224;

function loadError(path: string, message: string): CodedError {
  return new CodedError('PIPELINE_INVALID', `${path}: ${message}`, 422, { problems: [{ path, message }] });
}

/** Case-sensitive match first, then case-insensitive (as the original looked up regions). */
export function findClassIndex(names: readonly string[], wanted: string): number {
  const exact = names.indexOf(wanted);
  if (exact >= 0) return exact;
  const lower = wanted.toLowerCase();
  return names.findIndex((n) => n.toLowerCase() === lower);
}

async function classNamesFor(node: PipelineNode, meta: OnnxMetadata, labelsPath: string | undefined, path: string): Promise<string[] | undefined> {
  if (node.classNames) return node.classNames;
  if (labelsPath) {
    try {
      return parseLabelsFile(await readFile(labelsPath, 'utf8'));
    } catch (err) {
      throw loadError(`${path}.labelsFile`, err instanceof Error ? err.message : String(err));
    }
  }
  if (meta.names) return parseUltralyticsNames(meta.names);
  return undefined;
}

function spatialSize(node: PipelineNode, meta: OnnxMetadata, task: 'detect' | 'classify' | undefined): [number, number] {
  if (node.resizeTarget) return [node.resizeTarget[1], node.resizeTarget[0]];
  if (meta.imgsz) {
    try {
      return parseImgsz(meta.imgsz);
    } catch {
      // fall through to the task default
    }
  }
  const s = task === 'classify' ? DEFAULT_CLASSIFY_SIZE : DEFAULT_DETECT_SIZE;
  return [s, s];
}

async function prepareNode(
  node: PipelineNode,
  path: string,
  key: string,
  archive: LoadedArchive,
  pool: InferencePool,
  options: PrepareOptions,
  parentClasses: string[] | null,
): Promise<PreparedNode> {
  const files = archive.nodes.find((n) => n.modelId === node.modelId);
  if (!files) throw loadError(`${path}.modelFile`, 'model file was not resolved');
  const bytes = await readFile(files.modelPath);
  const meta = readOnnxMetadata(bytes);
  const metaTask = meta.task === 'classify' || meta.task === 'detect' ? meta.task : undefined;
  const declaredTask = node.task ?? metaTask;

  const session: SessionSpec = { key: `${key}/${node.modelId}`, modelPath: files.modelPath, intraOpThreads: options.intraOpThreads };
  const hint = spatialSize(node, meta, declaredTask);
  let reply;
  try {
    reply = await pool.load(session, hint);
  } catch (err) {
    throw new CodedError('MODEL_CORRUPT', `${path}.modelFile: onnxruntime could not load ${node.modelFile}: ${err instanceof Error ? err.message : String(err)}`, 422, {
      problems: [{ path: `${path}.modelFile`, message: 'onnxruntime could not load the model' }],
    });
  }
  const input = reply.inputs[0];
  const output = reply.outputs[0];
  if (!input || !output) throw loadError(`${path}.modelFile`, 'model has no input or no output');
  if (input.type !== 'float32' || input.dims.length !== 4 || (typeof input.dims[1] === 'number' && input.dims[1] !== 3)) {
    throw new CodedError('MODEL_INPUT_UNSUPPORTED', `${path}.modelFile: input ${input.name} is ${input.type}${JSON.stringify(input.dims)}; expected float32 [N,3,H,W]`, 422);
  }
  const height = typeof input.dims[2] === 'number' ? input.dims[2] : hint[0];
  const width = typeof input.dims[3] === 'number' ? input.dims[3] : hint[1];

  const names = await classNamesFor(node, meta, files.labelsPath, path);
  let format: OutputFormat;
  try {
    format = detectOutputFormat(output.dims, meta, {
      ...(node.outputFormat ? { override: node.outputFormat } : {}),
      ...(names ? { numClasses: names.length } : {}),
      ...(declaredTask ? { task: declaredTask } : {}),
    });
  } catch (err) {
    if (err instanceof CodedError) throw new CodedError(err.code, `${path}.modelFile (${node.modelFile}): ${err.message}`, err.statusCode, err.details);
    throw err;
  }
  const task = format === 'classify' ? 'classify' : 'detect';
  if (!names) throw loadError(`${path}.classNames`, `model ${node.modelFile} has no class names in its metadata: give "classNames" or "labelsFile"`);

  let classFilter: number[] | null = null;
  if (task === 'detect') {
    const own = node.triggerClasses.map((c) => findClassIndex(names, c)).filter((i) => i >= 0);
    if (parentClasses === null && own.length === 0) {
      throw loadError(`${path}.triggerClasses`, `none of ${JSON.stringify(node.triggerClasses)} is a class of ${node.modelFile} (classes: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})`);
    }
    classFilter = own.length ? [...new Set(own)] : null;
  }
  if (parentClasses) {
    node.triggerClasses.forEach((c, i) => {
      if (findClassIndex(parentClasses, c) < 0) throw loadError(`${path}.triggerClasses[${i}]`, `"${c}" is not a class of the parent node, so this branch could never run`);
    });
  }

  const pre = node.preprocess ?? {};
  const branchPath = (i: number) => `${path}.branches[${i}]`;
  const branches: PreparedNode[] = [];
  for (const [i, b] of (node.branches ?? []).entries()) {
    if (task !== 'detect') throw loadError(`${branchPath(i)}`, 'a classification node has no regions, so it cannot have branches');
    branches.push(await prepareNode(b, branchPath(i), key, archive, pool, options, names));
  }
  return {
    spec: node,
    path,
    session,
    task,
    format,
    classNames: names,
    inputName: input.name,
    fit: { width, height, resize: pre.resize ?? (task === 'detect' ? 'letterbox' : 'stretch'), padValue: pre.padValue ?? 114 },
    norm: { channelOrder: pre.channelOrder ?? 'rgb', ...(pre.mean ? { mean: pre.mean } : {}), ...(pre.std ? { std: pre.std } : {}) },
    iouThreshold: node.iouThreshold ?? 0.45,
    softmax: node.softmax ?? 'auto',
    classFilter,
    branches,
    modelBytes: files.bytes,
    decodeFullFrame: (node.branches ?? []).some((b) => b.crop === true) || [...(node.actions ?? []), ...(node.parallelActions ?? [])].some((a) => a.type === 'redis_save_image'),
  };
}

export async function preparePipeline(key: string, archive: LoadedArchive, pool: InferencePool, options: PrepareOptions): Promise<PreparedPipeline> {
  const sessionKeys = archive.nodes.map((n) => `${key}/${n.modelId}`);
  try {
    const root = await prepareNode(archive.pipeline.pipeline, '$.pipeline', key, archive, pool, options, null);
    return { key, file: archive.pipeline, root, sessionKeys, modelBytes: archive.totalModelBytes };
  } catch (err) {
    pool.removeSessions(sessionKeys);
    throw err;
  }
}
