/**
 * The `.mpta` layout on top of a safely unpacked zip: finds pipeline.json (at the root or in
 * one top-level folder), validates it, and resolves every node's model and labels file
 * inside that folder. The target folder is replaced only when all of that succeeds.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import type { PipelineFile, PipelineNode } from '@detector-worker/shared/pipeline/schema';
import { listNodes, validatePipelineFile, type PipelineProblem } from '@detector-worker/shared/pipeline/validate';
import { extractInto, makeTempDir, moveIntoPlace, type ArchiveLimits, type ExtractedEntry } from './zip-extract.js';
import { coded } from '../error-codes.js';

export type { ArchiveLimits } from './zip-extract.js';

export interface LoadedNode {
  modelId: string;
  /** JSON path of the node in pipeline.json, e.g. `$.pipeline.branches[0]`. */
  path: string;
  /** Absolute path of the node's ONNX file. */
  modelPath: string;
  labelsPath?: string;
  /** OCR nodes: the fast-plate-ocr yaml and the CTC dictionary, when pipeline.json names them. */
  ocrConfigPath?: string;
  ocrDictionaryPath?: string;
  /** Size of the model file. */
  bytes: number;
}

export interface LoadedArchive {
  /** Absolute folder holding pipeline.json; modelFile paths are relative to it. */
  dir: string;
  /** Absolute folder the whole archive was unpacked into (destDir). */
  archiveDir: string;
  pipeline: PipelineFile;
  /** Depth-first, root first. */
  nodes: LoadedNode[];
  totalModelBytes: number;
}

const PIPELINE_JSON = 'pipeline.json';
/** Generous: class lists of 100k names fit; anything bigger is not a pipeline description. */
const MAX_PIPELINE_JSON_BYTES = 16 * 1024 * 1024;
/** macOS zips carry resource forks here; never a pipeline folder. */
const IGNORED_TOP_FOLDERS = new Set(['__MACOSX']);

/**
 * Unpacks, finds and validates pipeline.json, and resolves every node's model (and labels)
 * file. destDir is replaced only when all of that succeeds; on failure nothing is left.
 */
export async function loadPipelineArchive(zipFile: string, destDir: string, limits: ArchiveLimits): Promise<LoadedArchive> {
  const target = resolve(destDir);
  const temp = await makeTempDir(target);
  try {
    const entries = await extractInto(zipFile, temp, limits);
    const folder = findPipelineFolder(entries);
    const pipeline = await readPipelineJson(temp, folder);
    const nodes = await resolveModelFiles(temp, folder, pipeline);
    await moveIntoPlace(temp, target);
    const dir = folder ? join(target, ...folder.split('/')) : target;
    const inTarget = (rel: string): string => join(dir, ...rel.split('/'));
    const loaded = nodes.map((n) => ({
      modelId: n.modelId,
      path: n.path,
      modelPath: inTarget(n.modelFile),
      ...(n.labelsFile !== undefined ? { labelsPath: inTarget(n.labelsFile) } : {}),
      ...(n.ocrConfig !== undefined ? { ocrConfigPath: inTarget(n.ocrConfig) } : {}),
      ...(n.ocrDictionary !== undefined ? { ocrDictionaryPath: inTarget(n.ocrDictionary) } : {}),
      bytes: n.bytes,
    }));
    return { dir, archiveDir: target, pipeline, nodes: loaded, totalModelBytes: loaded.reduce((sum, n) => sum + n.bytes, 0) };
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * '' when pipeline.json sits at the root, else the first top-level folder (archive order)
 * holding one (spec/pipeline-semantics.md).
 */
export function findPipelineFolder(entries: readonly ExtractedEntry[]): string {
  const files = entries.filter((e) => !e.dir);
  if (files.some((e) => e.name === PIPELINE_JSON)) return '';
  for (const e of files) {
    const parts = e.name.split('/');
    if (parts.length === 2 && parts[1] === PIPELINE_JSON && !IGNORED_TOP_FOLDERS.has(parts[0]!)) return parts[0]!;
  }
  throw coded('PIPELINE_JSON_MISSING', 'the archive has no pipeline.json at its root or in a top-level folder');
}

async function readPipelineJson(root: string, folder: string): Promise<PipelineFile> {
  const file = join(root, ...(folder ? folder.split('/') : []), PIPELINE_JSON);
  const where = folder ? `${folder}/${PIPELINE_JSON}` : PIPELINE_JSON;
  const info = await stat(file);
  if (info.size > MAX_PIPELINE_JSON_BYTES) {
    throw coded('PIPELINE_JSON_INVALID', `${where} is ${info.size} bytes; the limit is ${MAX_PIPELINE_JSON_BYTES}`, { file: where });
  }
  // Editors on Windows like to start UTF-8 files with a BOM, which JSON.parse refuses.
  const text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw coded('PIPELINE_JSON_INVALID', `${where} is not valid JSON: ${errorMessage(err)}`, { file: where, error: errorMessage(err) });
  }
  const result = validatePipelineFile(parsed);
  if (!result.ok) throw pipelineInvalid(where, result.problems);
  return result.value;
}

function pipelineInvalid(where: string, problems: PipelineProblem[]): CodedError {
  const first = problems[0];
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  const summary = first ? `: ${first.path} ${first.message}${more}` : '';
  return coded('PIPELINE_INVALID', `${where} is invalid${summary}`, { file: where, problems });
}

interface ResolvedNode {
  modelId: string;
  path: string;
  modelFile: string;
  labelsFile?: string;
  ocrConfig?: string;
  ocrDictionary?: string;
  bytes: number;
}

/** Side files a node may name besides its model: pipeline.json key -> value. */
function sideFiles(node: PipelineNode): Array<{ key: 'labelsFile' | 'ocr.config' | 'ocr.dictionary'; reference: string }> {
  const out: Array<{ key: 'labelsFile' | 'ocr.config' | 'ocr.dictionary'; reference: string }> = [];
  if (node.labelsFile !== undefined) out.push({ key: 'labelsFile', reference: node.labelsFile });
  if (node.ocr?.config !== undefined) out.push({ key: 'ocr.config', reference: node.ocr.config });
  if (node.ocr?.dictionary !== undefined) out.push({ key: 'ocr.dictionary', reference: node.ocr.dictionary });
  return out;
}

/**
 * A pipeline.json file reference as a normalised path inside the pipeline folder, or
 * undefined when it would leave it. Backslashes are read as separators (Windows authors).
 */
export function resolveArchivePath(reference: string): string | undefined {
  const text = reference.replace(/\\/g, '/');
  if (text.startsWith('/') || /^[A-Za-z]:/.test(text) || text.includes('\0')) return undefined;
  const normalised = posix.normalize(text);
  if (normalised === '..' || normalised.startsWith('../') || normalised === '.' || normalised.endsWith('/')) return undefined;
  return normalised;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

async function resolveModelFiles(root: string, folder: string, file: PipelineFile): Promise<ResolvedNode[]> {
  const base = folder ? join(root, ...folder.split('/')) : root;
  const onDisk = (rel: string): string => join(base, ...rel.split('/'));
  const nodes = listNodes(file.pipeline);

  // 1. References must stay inside the pipeline folder: a pipeline.json problem.
  const problems: PipelineProblem[] = [];
  const refs = nodes.map(({ node, path }) => {
    const modelFile = resolveArchivePath(node.modelFile);
    if (modelFile === undefined) problems.push({ path: `${path}.modelFile`, message: 'must be a file path inside the archive folder that holds pipeline.json' });
    const side = sideFiles(node).map(({ key, reference }) => {
      const resolved = resolveArchivePath(reference);
      if (resolved === undefined) problems.push({ path: `${path}.${key}`, message: 'must be a file path inside the archive folder that holds pipeline.json' });
      return { key, reference, resolved: resolved ?? '' };
    });
    const find = (key: string): string | undefined => side.find((f) => f.key === key)?.resolved;
    return { node, path, modelFile: modelFile ?? '', labelsFile: find('labelsFile'), ocrConfig: find('ocr.config'), ocrDictionary: find('ocr.dictionary'), side };
  });
  if (problems.length) throw pipelineInvalid(folder ? `${folder}/${PIPELINE_JSON}` : PIPELINE_JSON, problems);

  // 2. Only ONNX runs here; say how to get there from a PyTorch checkpoint.
  for (const { node, path, modelFile } of refs) {
    const ext = posix.extname(modelFile).toLowerCase();
    if (ext === '.onnx') continue;
    const details = { node: path, path: `${path}.modelFile`, modelFile: node.modelFile };
    if (ext === '.pt' || ext === '.pth') {
      const onnxName = `${modelFile.slice(0, -ext.length)}.onnx`;
      const present = (await fileSize(onDisk(onnxName))) !== undefined ? ` (the archive already contains ${onnxName})` : '';
      throw coded(
        'MODEL_FORMAT_UNSUPPORTED',
        `${path}.modelFile "${node.modelFile}" is a PyTorch model; this service runs ONNX models only. ` +
          `Export it with \`yolo export model=${modelFile} format=onnx\` and reference ${onnxName} in pipeline.json${present}.`,
        { ...details, hint: `yolo export model=${modelFile} format=onnx` },
      );
    }
    throw coded(
      'MODEL_FORMAT_UNSUPPORTED',
      `${path}.modelFile "${node.modelFile}" is not an ONNX model; only .onnx model files are supported (export other formats to ONNX first).`,
      details,
    );
  }

  // 3. Every referenced file must exist: a missing one fails the whole load (like the original).
  const missing: Array<{ node: string; path: string; file: string }> = [];
  const resolved: ResolvedNode[] = [];
  for (const { node, path, modelFile, labelsFile, ocrConfig, ocrDictionary, side } of refs) {
    const bytes = await fileSize(onDisk(modelFile));
    if (bytes === undefined) missing.push({ node: path, path: `${path}.modelFile`, file: node.modelFile });
    for (const f of side) {
      if ((await fileSize(onDisk(f.resolved))) === undefined) missing.push({ node: path, path: `${path}.${f.key}`, file: f.reference });
    }
    resolved.push({
      modelId: node.modelId,
      path,
      modelFile,
      ...(labelsFile !== undefined ? { labelsFile } : {}),
      ...(ocrConfig !== undefined ? { ocrConfig } : {}),
      ...(ocrDictionary !== undefined ? { ocrDictionary } : {}),
      bytes: bytes ?? 0,
    });
  }
  const first = missing[0];
  if (first) {
    const inFolder = folder ? ` in folder ${folder}/` : '';
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
    throw coded('MODEL_FILE_MISSING', `${first.path} "${first.file}" is not in the archive${inFolder}${more}`, { node: first.node, path: first.path, file: first.file, missing });
  }
  return resolved;
}
