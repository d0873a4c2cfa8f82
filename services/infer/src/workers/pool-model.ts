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
import type { OcrLayout, OnnxMetadata, OutputFormat } from '../inference/types.js';
import { detectOcrLayout } from '../inference/decoders/index.js';
import { OcrConfigError, parseCtcDictionary, parsePlateOcrConfig, type PlateOcrConfig } from '../inference/ocr-config.js';
import type { LoadReply } from './tasks.js';
import type { FitTarget } from '../images/frame-image.js';
import type { LoadedArchive, LoadedNode } from '../models/mpta-layout.js';
import type { PreparedNode } from '../pipeline/node.js';
import type { LoadedModel, NodeModelLoader } from '../pipeline/ports.js';
import type { InferencePool } from './pool.js';
import type { Normalisation, OcrCharsetSpec, SessionSpec } from './tasks.js';
import { coded, pipelineProblem } from '../error-codes.js';

/** How an OCR node's model reads (workers/pool-runner.ts `read`). */
export interface PoolOcrModel {
  layout: OcrLayout;
  input: 'uint8-nhwc' | 'float32-nchw';
  channels: 1 | 3;
  charset: OcrCharsetSpec;
  /** CTC models with a symbolic width get the crop's own aspect at their fixed height. */
  dynamicWidth: boolean;
  maxWidth: number;
  /** Fixed-slot models: characters per read at most. */
  slots?: number;
}

/** How this runner runs a node's model. */
export interface PoolModel {
  session: SessionSpec;
  format: OutputFormat | 'ocr-slots' | 'ocr-ctc';
  ocr?: PoolOcrModel;
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


async function classNamesFor(node: PipelineNode, meta: OnnxMetadata, labelsPath: string | undefined, path: string): Promise<string[] | undefined> {
  if (node.classNames) return node.classNames;
  if (labelsPath) {
    try {
      return parseLabelsFile(await readFile(labelsPath, 'utf8'));
    } catch (err) {
      throw pipelineProblem(`${path}.labelsFile`, err instanceof Error ? err.message : String(err));
    }
  }
  if (meta.names) return parseUltralyticsNames(meta.names);
  return undefined;
}

async function readSideFile<T>(file: string, path: string, parse: (text: string) => T): Promise<T> {
  try {
    return parse(await readFile(file, 'utf8'));
  } catch (err) {
    const why = err instanceof OcrConfigError ? err.message : `cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    throw pipelineProblem(path, why);
  }
}

/** The characters of an OCR node: pipeline.json, the fast-plate-ocr yaml, or the CTC dictionary. */
async function ocrCharset(node: PipelineNode, files: LoadedNode, path: string): Promise<{ charset: OcrCharsetSpec; config?: PlateOcrConfig }> {
  const ocr = node.ocr ?? {};
  if (files.ocrDictionaryPath) return { charset: { dictionary: await readSideFile(files.ocrDictionaryPath, `${path}.ocr.dictionary`, parseCtcDictionary) } };
  if (files.ocrConfigPath) {
    const config = await readSideFile(files.ocrConfigPath, `${path}.ocr.config`, parsePlateOcrConfig);
    const padChar = ocr.padChar ?? config.padChar;
    if (!config.alphabet.includes(padChar)) throw pipelineProblem(`${path}.ocr.padChar`, `"${padChar}" is not in the config's alphabet`);
    return { charset: { alphabet: config.alphabet, padChar }, config };
  }
  if (ocr.alphabet) {
    const alphabet = [...ocr.alphabet];
    const padChar = ocr.padChar ?? (alphabet.includes('_') ? '_' : undefined);
    if (padChar === undefined) throw pipelineProblem(`${path}.ocr.padChar`, 'is required when the alphabet has no "_"');
    return { charset: { alphabet, padChar } };
  }
  throw pipelineProblem(`${path}.ocr`, 'an OCR node needs ocr.config or ocr.alphabet (fixed slots) or ocr.dictionary (CTC)');
}

function spatialSize(node: PipelineNode, meta: OnnxMetadata, task: 'detect' | 'classify' | 'ocr' | undefined): [number, number] {
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
    if (!files) throw pipelineProblem(`${path}.modelFile`, 'model file was not resolved');
    const bytes = await readFile(files.modelPath);
    const meta = readOnnxMetadata(bytes);
    const metaTask = meta.task === 'classify' || meta.task === 'detect' ? meta.task : undefined;
    const declaredTask = node.task ?? metaTask;

    const session: SessionSpec = { key: `${this.key}/${node.modelId}`, modelPath: files.modelPath, intraOpThreads: this.options.intraOpThreads };
    this.sessionKeys.push(session.key);
    let ocrSide: Awaited<ReturnType<typeof ocrCharset>> | undefined;
    if (declaredTask === 'ocr') ocrSide = await ocrCharset(node, files, path);
    const hint: [number, number] = ocrSide?.config ? [ocrSide.config.height, ocrSide.config.width] : declaredTask === 'ocr' ? [48, 320] : spatialSize(node, meta, declaredTask);
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
    if (!input || !output) throw pipelineProblem(`${path}.modelFile`, 'model has no input or no output');
    if (ocrSide) return this.loadOcr(node, path, files, session, reply, ocrSide);
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
        ...(declaredTask && declaredTask !== 'ocr' ? { task: declaredTask } : {}),
      });
    } catch (err) {
      if (err instanceof CodedError) throw err.withMessage(`${path}.modelFile (${node.modelFile}): ${err.message}`);
      throw err;
    }
    const task = format === 'classify' ? 'classify' : 'detect';
    if (!names) throw pipelineProblem(`${path}.classNames`, `model ${node.modelFile} has no class names in its metadata: give "classNames" or "labelsFile"`);

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

  private loadOcr(node: PipelineNode, path: string, files: LoadedNode, session: SessionSpec, reply: LoadReply, side: { charset: OcrCharsetSpec; config?: PlateOcrConfig }): LoadedModel<PoolModel> {
    const input = reply.inputs[0]!;
    const output = reply.outputs[0]!;
    let layout;
    try {
      layout = detectOcrLayout(input, output, {
        ...side.charset,
        ...(side.config ? { height: side.config.height, width: side.config.width, channels: side.config.colorMode === 'grayscale' ? 1 : 3 } : {}),
      });
    } catch (err) {
      if (err instanceof CodedError) throw err.withMessage(`${path}.modelFile (${node.modelFile}): ${err.message}`);
      throw err;
    }
    const pre = node.preprocess ?? {};
    // PaddleOCR recognisers are trained on OpenCV (BGR) images scaled to [-1, 1].
    const ctc = layout.layout === 'ctc';
    const model: PoolModel = {
      session,
      format: ctc ? 'ocr-ctc' : 'ocr-slots',
      inputName: input.name,
      fit: { width: layout.width, height: layout.height, resize: pre.resize ?? 'stretch', padValue: pre.padValue ?? 0 },
      norm: { channelOrder: pre.channelOrder ?? (ctc ? 'bgr' : 'rgb'), mean: pre.mean ?? (ctc ? [0.5, 0.5, 0.5] : [0, 0, 0]), std: pre.std ?? (ctc ? [0.5, 0.5, 0.5] : [1, 1, 1]) },
      iouThreshold: 0,
      softmax: false,
      ocr: { layout: layout.layout, input: layout.input, channels: layout.channels, charset: side.charset, dynamicWidth: ctc && typeof input.dims[3] !== 'number',
        maxWidth: ctc ? Math.max(layout.width, 320) : layout.width,
        ...(!ctc && typeof output.dims[1] === 'number' ? { slots: output.dims[1] } : {}),
      },
    };
    return { task: 'ocr', classNames: [], bytes: files.bytes, model };
  }
}
