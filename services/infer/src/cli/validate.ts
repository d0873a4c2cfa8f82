/**
 * `mpta validate`: loads an archive (or a folder, zipped first by the pack code) through the
 * infer service's own load sequence (models/load-pipeline.ts) on a one-worker pool, in a
 * temp folder that is removed afterwards. Nothing is re-checked here: the report is what
 * the loader said.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { errorMessage } from '@detector-worker/shared/errors';
import type { ArchiveLimits } from '../models/mpta-layout.js';
import { loadRunnablePipeline } from '../models/load-pipeline.js';
import type { RunnablePipeline } from '../models/load-pipeline.js';
import { InferencePool } from '../workers/pool.js';
import { zipFolder } from './pack.js';
import { problemsOf, type Problem } from './problems.js';
import { coded } from '../error-codes.js';

export interface ValidateOptions {
  archive: ArchiveLimits;
  intraOpThreads: number;
}

export interface ValidationReport {
  valid: boolean;
  problems: Problem[];
  /** The prepared pipeline when valid. */
  pipeline?: RunnablePipeline;
}

/** Session key prefix of the tool's single pipeline (infer uses the model id). */
const KEY = 'mpta';

/**
 * Validates `target` (an .mpta file or a folder holding pipeline.json). A target that does
 * not exist throws MPTA_TARGET_MISSING (nothing was validated); every load failure is a
 * problem in the report instead.
 */
export async function validateTarget(target: string, options: ValidateOptions): Promise<ValidationReport> {
  const path = resolve(target);
  const info = await stat(path).catch((err: unknown) => {
    throw coded('MPTA_TARGET_MISSING', `cannot read ${target}: ${errorMessage(err)}`);
  });
  const work = await mkdtemp(join(tmpdir(), 'mpta-'));
  const pool = new InferencePool({ workers: 1 });
  try {
    let archive = path;
    if (info.isDirectory()) {
      archive = join(work, 'folder.mpta');
      await writeFile(archive, await zipFolder(path));
    }
    await pool.start();
    const { pipeline } = await loadRunnablePipeline(KEY, archive, join(work, 'extracted'), pool, options);
    return { valid: true, problems: [], pipeline };
  } catch (err) {
    return { valid: false, problems: problemsOf(err) };
  } finally {
    await pool.close();
    await rm(work, { recursive: true, force: true });
  }
}
