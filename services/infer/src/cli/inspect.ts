/**
 * `mpta inspect`: a prepared pipeline as a tree an archive author can read (and as JSON for
 * scripts). Everything shown is what the loader worked out (task, decoder format, input
 * size, class names from the model), not what pipeline.json claims. Server passwords are
 * never shown.
 */
import type { PipelineFile } from '@detector-worker/shared/pipeline/schema';
import type { RunnablePipeline } from '../models/load-pipeline.js';
import type { PoolNode } from '../workers/pool-model.js';
import { DEFAULT_OCR_CROP_MARGIN, DEFAULT_OCR_MIN_CONFIDENCE } from '../pipeline/tree.js';

export interface NodeDescription {
  modelId: string;
  /** JSON path of the node in pipeline.json. */
  path: string;
  modelFile: string;
  task: 'detect' | 'classify' | 'ocr';
  format: string;
  input: { width: number; height: number; resize: string };
  classNames: string[];
  triggerClasses: string[];
  minConfidence: number;
  crop: boolean;
  cropClass?: string;
  parallel: boolean;
  actions: string[];
  parallelActions: string[];
  /** OCR nodes: how the reader reads and what a read must look like. */
  ocr?: { layout: string; characters: number; slots?: number; format?: string; minLength?: number; minConfidence: number; rectify: boolean; cropMargin: number };
  branches: NodeDescription[];
}

export interface ServerDescription {
  host: string;
  port: number;
  /** Redis db number, PostgreSQL database name. */
  database: string | number;
  /** Whether credentials are configured; their values are never shown. */
  credentials: boolean;
}

export interface PipelineDescription {
  redis?: ServerDescription;
  postgresql?: ServerDescription;
  pipeline: NodeDescription;
}

/** Class names shown per node in the text tree; JSON always has them all. */
const SHOWN_CLASSES = 10;

function describeNode(n: PoolNode): NodeDescription {
  const s = n.spec;
  return {
    modelId: s.modelId,
    path: n.path,
    modelFile: s.modelFile,
    task: n.task,
    format: n.model.format,
    input: { width: n.model.fit.width, height: n.model.fit.height, resize: n.model.fit.resize },
    classNames: n.classNames,
    triggerClasses: s.triggerClasses,
    minConfidence: s.minConfidence,
    crop: s.crop === true,
    // The original crops the first trigger class when cropClass is not given.
    // Without one, a missing first class falls back to the best of the other trigger classes.
    ...(s.crop ? { cropClass: s.cropClass ?? s.triggerClasses.join('|') } : {}),
    parallel: s.parallel === true,
    actions: (s.actions ?? []).map((a) => a.type),
    parallelActions: (s.parallelActions ?? []).map((a) => a.type),
    ...(n.model.ocr ? { ocr: describeOcr(n) } : {}),
    branches: n.branches.map(describeNode),
  };
}

function describeOcr(n: PoolNode): NonNullable<NodeDescription['ocr']> {
  const o = n.model.ocr!;
  const spec = n.spec.ocr ?? {};
  const characters = o.charset.dictionary?.length ?? (o.charset.alphabet ? o.charset.alphabet.length - (o.charset.padChar ? 1 : 0) : 0);
  return {
    layout: o.layout === 'ctc' ? 'CTC' : 'fixed slots',
    characters,
    ...(o.slots !== undefined ? { slots: o.slots } : {}),
    ...(spec.format !== undefined ? { format: spec.format } : {}),
    ...(spec.minLength !== undefined ? { minLength: spec.minLength } : {}),
    minConfidence: spec.minConfidence ?? DEFAULT_OCR_MIN_CONFIDENCE,
    rectify: spec.rectify !== false,
    cropMargin: n.spec.cropMargin ?? DEFAULT_OCR_CROP_MARGIN,
  };
}

function describeServers(file: PipelineFile): Omit<PipelineDescription, 'pipeline'> {
  const out: Omit<PipelineDescription, 'pipeline'> = {};
  if (file.redis) out.redis = { host: file.redis.host, port: file.redis.port, database: file.redis.db ?? 0, credentials: Boolean(file.redis.password) };
  if (file.postgresql) {
    const pg = file.postgresql;
    out.postgresql = { host: pg.host, port: pg.port, database: pg.database, credentials: Boolean(pg.username || pg.password) };
  }
  return out;
}

export function describePipeline(prepared: RunnablePipeline): PipelineDescription {
  return { ...describeServers(prepared.file), pipeline: describeNode(prepared.root) };
}

function classList(names: readonly string[]): string {
  if (names.length === 0) return '(none)';
  if (names.length <= SHOWN_CLASSES) return names.join(', ');
  return `${names.slice(0, SHOWN_CLASSES).join(', ')}, … (${names.length} classes)`;
}

function serverLine(kind: string, s: ServerDescription, database: string): string {
  return `${kind}: ${s.host}:${s.port} ${database}${s.credentials ? ' (credentials hidden)' : ''}`;
}

/** The text tree: one header line per node, its details indented below, branches deeper. */
export function renderPipeline(d: PipelineDescription): string {
  const lines: string[] = [];
  if (d.redis) lines.push(serverLine('redis', d.redis, `db ${d.redis.database}`));
  if (d.postgresql) lines.push(serverLine('postgresql', d.postgresql, `database ${d.postgresql.database}`));
  const walk = (n: NodeDescription, depth: number): void => {
    // A node's name sits 4 columns deeper per level, its details 4 deeper than its name.
    const column = 4 * depth;
    const detail = ' '.repeat(column + 4);
    lines.push(`${depth ? `${' '.repeat(column - 2)}└ ` : ''}${n.modelId}  [${n.task}, ${n.format}, ${n.input.width}x${n.input.height} ${n.input.resize}]  ${n.modelFile}`);
    if (n.ocr) {
      const o = n.ocr;
      const reads = `${o.layout}${o.slots !== undefined ? `, ${o.slots} slots` : ''}, ${o.characters} characters`;
      const rules = [o.format !== undefined ? `format ${o.format}` : '', o.minLength !== undefined ? `min length ${o.minLength}` : '', `weakest character >= ${o.minConfidence}`].filter(Boolean);
      lines.push(`${detail}reads: ${reads}; ${rules.join('; ')}; crop margin ${o.cropMargin}${o.rectify ? ', rectified by corners' : ''}`);
    } else lines.push(`${detail}classes: ${classList(n.classNames)}`);
    const flags = [n.crop ? `crop ${n.cropClass}` : '', n.parallel ? 'parallel' : ''].filter(Boolean);
    lines.push(`${detail}trigger: ${n.triggerClasses.join(', ')} @ >= ${n.minConfidence}${flags.length ? `; ${flags.join('; ')}` : ''}`);
    if (n.actions.length) lines.push(`${detail}actions: ${n.actions.join(', ')}`);
    if (n.parallelActions.length) lines.push(`${detail}parallelActions: ${n.parallelActions.join(', ')}`);
    n.branches.forEach((b) => walk(b, depth + 1));
  };
  walk(d.pipeline, 0);
  return lines.join('\n');
}
