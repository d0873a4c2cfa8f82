/**
 * The one load sequence of an `.mpta` archive, from zip file to runnable pipeline: safe
 * extraction and pipeline.json validation, the load-time checks of actions, then ONNX
 * sessions, decoders and trigger classes. The model registry and the `mpta` tool both go
 * through here, so what `mpta validate` accepts is exactly what infer loads.
 */
import { CodedError } from '@detector-worker/shared/errors';
import { checkPipelineActions } from '../actions/check.js';
import type { InferencePool } from '../workers/pool.js';
import { loadPipelineArchive, type ArchiveLimits, type LoadedArchive } from './mpta-layout.js';
import { preparePipeline, type PreparedPipeline } from './prepare.js';

export interface LoadPipelineOptions {
  archive: ArchiveLimits;
  intraOpThreads: number;
}

export interface LoadedPipeline {
  archive: LoadedArchive;
  pipeline: PreparedPipeline;
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
    throw new CodedError('PIPELINE_INVALID', `pipeline.json actions are invalid: ${summary}`, 422, { problems: actionProblems });
  }
  const pipeline = await preparePipeline(key, archive, pool, { intraOpThreads: options.intraOpThreads });
  return { archive, pipeline };
}
