/**
 * The one load sequence of an `.mpta` archive, from zip file to runnable pipeline: safe
 * extraction and pipeline.json validation, the load-time checks of actions, then ONNX
 * sessions and decoders (workers/pool-model.ts), then the tree rules (pipeline/prepare.ts). The model registry and the `mpta` tool both go
 * through here, so what `mpta validate` accepts is exactly what infer loads.
 */
import { CodedError } from '@detector-worker/shared/errors';
import { checkPipelineActions } from '../actions/check.js';
import type { PreparedPipeline } from '../pipeline/node.js';
import { preparePipeline } from '../pipeline/prepare.js';
import { PoolModelLoader, type PoolModel } from '../workers/pool-model.js';
import type { InferencePool } from '../workers/pool.js';
import { loadPipelineArchive, type ArchiveLimits, type LoadedArchive } from './mpta-layout.js';
import { coded } from '../error-codes.js';

export interface LoadPipelineOptions {
  archive: ArchiveLimits;
  intraOpThreads: number;
}

/** A prepared pipeline whose models have sessions on the worker pool. */
export interface RunnablePipeline extends PreparedPipeline<PoolModel> {
  /** The pool sessions of its nodes, removed when the pipeline is evicted. */
  sessionKeys: string[];
}

export interface LoadedPipeline {
  archive: LoadedArchive;
  pipeline: RunnablePipeline;
}

/**
 * Unpacks `zipFile` into `destDir` and prepares its pipeline under `key` on `pool` (which
 * must be started). Throws the CodedError of the first failing stage; schema and action
 * problems come all at once in `details.problems` ({path, message}[]).
 */
export async function loadRunnablePipeline(key: string, zipFile: string, destDir: string, pool: InferencePool, options: LoadPipelineOptions): Promise<LoadedPipeline> {
  const archive = await loadPipelineArchive(zipFile, destDir, options.archive);
  const actionProblems = checkPipelineActions(archive.pipeline);
  if (actionProblems.length) {
    const summary = actionProblems.map((p) => `${p.path}: ${p.message}`).join('; ');
    throw coded('PIPELINE_INVALID', `pipeline.json actions are invalid: ${summary}`, { problems: actionProblems });
  }
  const loader = new PoolModelLoader(key, archive, pool, { intraOpThreads: options.intraOpThreads });
  try {
    const prepared = await preparePipeline(key, archive.pipeline, loader);
    return { archive, pipeline: { ...prepared, sessionKeys: loader.sessionKeys } };
  } catch (err) {
    pool.removeSessions(loader.sessionKeys);
    throw err;
  }
}
