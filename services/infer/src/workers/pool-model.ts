/**
 * The model runner's side of loading a node: reads the ONNX file's metadata (class names,
 * input size, task), creates its session on every worker, checks the input, and picks the
 * output decoder. What it works out is the node's `model` handle, which only this runner
 * reads (pool-runner.ts); the pipeline sees the task and the class names.
 */
import { readFile } from 'node:fs/promises';
import { CodedError } from '@detector-worker/shared/errors';
import type { PipelineNode } from '@detector-worker/shared/pipeline/schema';
import { parseImgsz, parseLabelsFile, parseUltralyticsNames } from '../inference/class-names.js';
import { detectOutputFormat } from '../inference/decoders/index.js';
import { readOnnxMetadata } from '../inference/onnx-metadata.js';
import type { OnnxMetadata, OutputFormat } from '../inference/types.js';
import type { FitTarget } from '../images/frame-image.js';
import type { LoadedArchive } from '../models/mpta-layout.js';
import type { PreparedNode } from '../pipeline/node.js';
import type { LoadedModel, NodeModelLoader } from '../pipeline/ports.js';
import type { InferencePool } from './pool.js';
import type { Normalisation, SessionSpec } from './tasks.js';
import { coded } from '../error-codes.js';

/** How this runner runs a node's model. */
export interface PoolModel {
  session: SessionSpec;
  format: OutputFormat;
  inputName: string;
  fit: FitTarget;
  norm: Normalisation;
  iouThreshold: number;
  softmax: boolean | 'auto';
}

export type PoolNode = PreparedNode<PoolModel>;

export interface PoolModelOptions {
  intraOpThreads: number;
}

const DEFAULT_DETECT_SIZE = 640;
const DEFAULT_CLASSIFY_SIZE = 224;

function loadError(path: string, message: string): CodedError {
  return coded('PIPELINE_INVALID', `${path}: ${message}`, { problems: [{ path, message }] });
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

/** Loads the nodes of one archive's pipeline under `key` (session keys `<key>/<modelId>`). */
export class PoolModelLoader implements NodeModelLoader<PoolModel> {
  /** Sessions created so far, for the caller to remove when the load fails. */
  readonly sessionKeys: string[] = [];

  constructor(
    private readonly key: string,
    private readonly archive: LoadedArchive,
    private readonly pool: InferencePool,
    private readonly options: PoolModelOptions,
  ) {}

  async load(node: PipelineNode, path: string): Promise<LoadedModel<PoolModel>> {
    const files = this.archive.nodes.find((n) => n.modelId === node.modelId);
    if (!files) throw loadError(`${path}.modelFile`, 'model file was not resolved');
    const bytes = await readFile(files.modelPath);
    const meta = readOnnxMetadata(bytes);
    const metaTask = meta.task === 'classify' || meta.task === 'detect' ? meta.task : undefined;
    const declaredTask = node.task ?? metaTask;

    const session: SessionSpec = { key: `${this.key}/${node.modelId}`, modelPath: files.modelPath, intraOpThreads: this.options.intraOpThreads };
    this.sessionKeys.push(session.key);
    const hint = spatialSize(node, meta, declaredTask);
    let reply;
    try {
      reply = await this.pool.load(session, hint);
    } catch (err) {
      throw coded('MODEL_CORRUPT', `${path}.modelFile: onnxruntime could not load ${node.modelFile}: ${err instanceof Error ? err.message : String(err)}`, {
        problems: [{ path: `${path}.modelFile`, message: 'onnxruntime could not load the model' }],
      });
    }
    const input = reply.inputs[0];
    const output = reply.outputs[0];
    if (!input || !output) throw loadError(`${path}.modelFile`, 'model has no input or no output');
    if (input.type !== 'float32' || input.dims.length !== 4 || (typeof input.dims[1] === 'number' && input.dims[1] !== 3)) {
      throw coded('MODEL_INPUT_UNSUPPORTED', `${path}.modelFile: input ${input.name} is ${input.type}${JSON.stringify(input.dims)}; expected float32 [N,3,H,W]`);
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
      if (err instanceof CodedError) throw err.withMessage(`${path}.modelFile (${node.modelFile}): ${err.message}`);
      throw err;
    }
    const task = format === 'classify' ? 'classify' : 'detect';
    if (!names) throw loadError(`${path}.classNames`, `model ${node.modelFile} has no class names in its metadata: give "classNames" or "labelsFile"`);

    const pre = node.preprocess ?? {};
    const model: PoolModel = {
      session,
      format,
      inputName: input.name,
      fit: { width, height, resize: pre.resize ?? (task === 'detect' ? 'letterbox' : 'stretch'), padValue: pre.padValue ?? 114 },
      norm: { channelOrder: pre.channelOrder ?? 'rgb', ...(pre.mean ? { mean: pre.mean } : {}), ...(pre.std ? { std: pre.std } : {}) },
      iouThreshold: node.iouThreshold ?? 0.45,
      softmax: node.softmax ?? 'auto',
    };
    return { task, classNames: names, bytes: files.bytes, model };
  }
}
