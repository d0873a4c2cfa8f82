#!/usr/bin/env node
/**
 * `mpta`: check and build .mpta archives with the infer service's own loading code (one
 * implementation: safe extraction, schema validation, action checks, ONNX sessions and
 * decoder selection exactly as a PUT /v1/models would do them).
 *
 *   mpta validate <archive.mpta | folder> [--json]
 *   mpta inspect  <archive.mpta | folder> [--json]
 *   mpta pack     <folder> [-o out.mpta] [--force]
 */
import { realpathSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import JSZip from 'jszip';
import { CodedError } from '@detector-worker/shared/errors';
import { redactUrl } from '@detector-worker/shared/logging';
import type { PipelineFile } from '@detector-worker/shared/pipeline/schema';
import { validatePipelineFile, type PipelineProblem } from '@detector-worker/shared/pipeline/validate';
import { checkPipelineActions } from '../actions/check.js';
import { loadInferConfig } from '../config.js';
import { loadPipelineArchive } from '../models/archive.js';
import { preparePipeline, type PreparedNode, type PreparedPipeline } from '../models/prepare.js';
import { InferencePool } from '../workers/pool.js';

const USAGE = `usage: mpta validate <archive.mpta|folder> [--json]
       mpta inspect  <archive.mpta|folder> [--json]
       mpta pack     <folder> [-o out.mpta] [--force]`;

interface Problem extends PipelineProblem {
  code: string;
}

class UsageError extends Error {}

/** Files of a folder for an archive; symlinks and special files are refused. */
async function folderFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const st = await lstat(p);
      if (st.isSymbolicLink()) throw new CodedError('PACK_SYMLINK', `${relative(dir, p)} is a symbolic link; archives hold plain files only`, 422);
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) out.push(p);
      else throw new CodedError('PACK_SPECIAL_FILE', `${relative(dir, p)} is not a plain file`, 422);
    }
  };
  await walk(dir);
  return out;
}

/** Builds an archive from a folder holding pipeline.json at its root. */
export async function packFolder(dir: string, options: { force?: boolean } = {}): Promise<{ zip: Buffer; problems: Problem[] }> {
  const files = await folderFiles(dir);
  const pipelinePath = join(dir, 'pipeline.json');
  if (!files.includes(pipelinePath)) throw new CodedError('PIPELINE_JSON_MISSING', `${dir} has no pipeline.json at its root`, 422);
  let problems: Problem[] = [];
  try {
    const parsed = JSON.parse(await readFile(pipelinePath, 'utf8')) as unknown;
    const v = validatePipelineFile(parsed);
    if (!v.ok) problems = v.problems.map((p) => ({ ...p, code: 'PIPELINE_INVALID' }));
  } catch (err) {
    problems = [{ path: '$', message: `pipeline.json is not JSON: ${(err as Error).message}`, code: 'PIPELINE_JSON_INVALID' }];
  }
  if (problems.length && !options.force) return { zip: Buffer.alloc(0), problems };
  const zip = new JSZip();
  for (const f of files) zip.file(relative(dir, f).split(sep).join('/'), await readFile(f), { createFolders: false });
  return { zip: await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 6 } }), problems };
}

export interface ValidationReport {
  valid: boolean;
  problems: Problem[];
  pipeline?: PreparedPipeline;
}

function problemsOf(err: unknown): Problem[] {
  if (err instanceof CodedError) {
    const listed = err.details?.problems as PipelineProblem[] | undefined;
    if (Array.isArray(listed) && listed.length) return listed.map((p) => ({ ...p, code: err.code }));
    return [{ path: String(err.details?.path ?? '$'), message: err.message, code: err.code }];
  }
  return [{ path: '$', message: err instanceof Error ? err.message : String(err), code: 'UNEXPECTED' }];
}

/**
 * Loads an archive (or a folder, packed first) exactly as infer does. The caller owns the
 * returned pool (close it) when the pipeline is used afterwards.
 */
export async function validateArchive(target: string): Promise<ValidationReport & { close(): Promise<void> }> {
  const work = await mkdtemp(join(tmpdir(), 'mpta-'));
  const pool = new InferencePool({ workers: 1 });
  const close = async () => {
    await pool.close();
    await rm(work, { recursive: true, force: true });
  };
  try {
    let archive = resolve(target);
    if ((await lstat(archive)).isDirectory()) {
      const packed = await packFolder(archive);
      if (packed.problems.length) return { valid: false, problems: packed.problems, close };
      archive = join(work, `${basename(target)}.mpta`);
      await writeFile(archive, packed.zip);
    }
    const config = loadInferConfig({});
    const loaded = await loadPipelineArchive(archive, join(work, 'extracted'), { maxEntries: config.archiveMaxEntries, maxUncompressedBytes: config.archiveMaxBytes });
    const actionProblems = checkPipelineActions(loaded.pipeline);
    if (actionProblems.length) return { valid: false, problems: actionProblems.map((p) => ({ ...p, code: 'PIPELINE_INVALID' })), close };
    await pool.start();
    const pipeline = await preparePipeline('mpta', loaded, pool, { intraOpThreads: 1 });
    return { valid: true, problems: [], pipeline, close };
  } catch (err) {
    return { valid: false, problems: problemsOf(err), close };
  }
}

function describeNode(n: PreparedNode): Record<string, unknown> {
  const s = n.spec;
  return {
    modelId: s.modelId,
    modelFile: s.modelFile,
    task: n.task,
    format: n.format,
    input: `${n.fit.width}x${n.fit.height}`,
    resize: n.fit.resize,
    classes: n.classNames.length,
    classNames: n.classNames,
    triggerClasses: s.triggerClasses,
    minConfidence: s.minConfidence,
    ...(s.crop ? { crop: true, cropClass: s.cropClass ?? s.triggerClasses[0] } : {}),
    ...(s.parallel ? { parallel: true } : {}),
    actions: (s.actions ?? []).map((a) => a.type),
    parallelActions: (s.parallelActions ?? []).map((a) => a.type),
    branches: n.branches.map(describeNode),
  };
}

export function renderTree(pipeline: PreparedPipeline): string {
  const lines: string[] = [];
  const file: PipelineFile = pipeline.file;
  if (file.redis) lines.push(`redis: ${file.redis.host}:${file.redis.port} db ${file.redis.db ?? 0}${file.redis.password ? ' (password set)' : ''}`);
  if (file.postgresql) lines.push(`postgresql: ${redactUrl(`postgres://${file.postgresql.username}:x@${file.postgresql.host}:${file.postgresql.port}/${file.postgresql.database}`)}`);
  const walk = (n: PreparedNode, depth: number): void => {
    const pad = '  '.repeat(depth);
    const names = n.classNames.length > 10 ? `${n.classNames.slice(0, 10).join(', ')}, … (${n.classNames.length})` : n.classNames.join(', ');
    const s = n.spec;
    lines.push(`${pad}${depth ? '└ ' : ''}${s.modelId}  [${n.task}, ${n.format}, ${n.fit.width}x${n.fit.height} ${n.fit.resize}]  ${s.modelFile}`);
    lines.push(`${pad}    classes: ${names}`);
    lines.push(`${pad}    trigger: ${s.triggerClasses.join(', ')} @ >= ${s.minConfidence}${s.crop ? `; crop ${s.cropClass ?? s.triggerClasses[0]}` : ''}${s.parallel ? '; parallel' : ''}`);
    if (s.actions?.length) lines.push(`${pad}    actions: ${s.actions.map((a) => a.type).join(', ')}`);
    if (s.parallelActions?.length) lines.push(`${pad}    parallelActions: ${s.parallelActions.map((a) => a.type).join(', ')}`);
    n.branches.forEach((b) => walk(b, depth + 1));
  };
  walk(pipeline.root, 0);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { json: { type: 'boolean', default: false }, out: { type: 'string', short: 'o' }, force: { type: 'boolean', default: false } } });
  const target = positionals[0];
  if (!command || command === '--help' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (!target) throw new UsageError(`${command} needs a path`);
  if (command === 'pack') {
    const out = resolve(values.out ?? `${basename(resolve(target))}.mpta`);
    const { zip, problems } = await packFolder(resolve(target), { force: values.force });
    for (const p of problems) console.error(`${p.path}: ${p.message}`);
    if (problems.length && !values.force) {
      console.error(`not packed: pipeline.json has ${problems.length} problem(s) (--force packs anyway)`);
      return 1;
    }
    await writeFile(out, zip);
    console.log(`wrote ${out} (${zip.length} bytes)`);
    return 0;
  }
  if (command !== 'validate' && command !== 'inspect') throw new UsageError(`unknown command ${command}`);
  const report = await validateArchive(target);
  try {
    if (values.json) {
      console.log(JSON.stringify({ valid: report.valid, problems: report.problems, ...(command === 'inspect' && report.pipeline ? { pipeline: describeNode(report.pipeline.root) } : {}) }, null, 2));
    } else if (!report.valid) {
      console.error(`${target}: invalid`);
      for (const p of report.problems) console.error(`  ${p.path}: ${p.message} [${p.code}]`);
    } else if (command === 'validate') {
      console.log(`${target}: valid (${report.pipeline!.sessionKeys.length} model node(s))`);
    } else console.log(renderTree(report.pipeline!));
    return report.valid ? 0 : 1;
  } finally {
    await report.close();
  }
}

// Run when executed (also through the node_modules/.bin symlink), not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(`${err.message}\n${USAGE}`);
        process.exit(2);
      }
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    },
  );
}
