/**
 * Folder -> `.mpta` archive. The folder holds pipeline.json at its root and the model files
 * it names; everything in it is zipped with `/`-separated names relative to it. Only plain
 * files and folders are taken: a symbolic link (which could pull in a file from outside the
 * folder) or a device/socket refuses the whole pack rather than being skipped silently.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import JSZip from 'jszip';
import { errorMessage } from '@detector-worker/shared/errors';
import { validatePipelineFile } from '@detector-worker/shared/pipeline/validate';
import type { Problem } from './problems.js';
import { coded } from '../error-codes.js';

const PIPELINE_JSON = 'pipeline.json';

export interface FolderOptions {
  /** Absolute paths left out (e.g. the archive being written into the folder itself). */
  exclude?: readonly string[];
}

/** Plain files below `dir`, sorted, as absolute paths; throws on links and special files. */
export async function folderFiles(dir: string, options: FolderOptions = {}): Promise<string[]> {
  const root = resolve(dir);
  const excluded = new Set((options.exclude ?? []).map((p) => resolve(p)));
  const info = await lstat(root).catch((err: unknown) => {
    throw coded('PACK_FOLDER_UNREADABLE', `cannot read ${dir}: ${errorMessage(err)}`);
  });
  // The folder itself may be reached through a link the user typed; only its contents are judged.
  if (!info.isDirectory() && !(info.isSymbolicLink() && (await isDirectory(root)))) {
    throw coded('PACK_NOT_A_FOLDER', `${dir} is not a folder`);
  }
  const out: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const name of (await readdir(folder)).sort()) {
      const path = join(folder, name);
      const rel = relative(root, path).split(sep).join('/');
      const entry = await lstat(path);
      if (entry.isSymbolicLink()) throw coded('PACK_SYMLINK', `${rel} is a symbolic link; an archive holds plain files only`, { file: rel });
      if (entry.isDirectory()) await walk(path);
      else if (!entry.isFile()) throw coded('PACK_SPECIAL_FILE', `${rel} is not a plain file`, { file: rel });
      else if (!excluded.has(path)) out.push(path);
    }
  };
  await walk(root);
  return out;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** Zips every plain file below `dir` (no pipeline.json checks: the loader makes those). */
export async function zipFolder(dir: string, options: FolderOptions = {}): Promise<Buffer> {
  return zipFiles(resolve(dir), await folderFiles(dir, options));
}

async function zipFiles(root: string, files: readonly string[]): Promise<Buffer> {
  const zip = new JSZip();
  for (const file of files) {
    zip.file(relative(root, file).split(sep).join('/'), await readFile(file), { createFolders: false, binary: true });
  }
  // ONNX weights barely compress; a middle level keeps packing quick for big models.
  return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 6 } });
}

/** Problems of `dir/pipeline.json` by the shared validator (the one infer uses), [] when valid. */
export async function pipelineJsonProblems(dir: string): Promise<Problem[]> {
  let text: string;
  try {
    text = await readFile(join(dir, PIPELINE_JSON), 'utf8');
  } catch (err) {
    return [{ path: '$', message: `${PIPELINE_JSON} cannot be read: ${errorMessage(err)}`, code: 'PIPELINE_JSON_MISSING' }];
  }
  let parsed: unknown;
  try {
    // Same leniency as the loader: a UTF-8 BOM from a Windows editor is not an error.
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    return [{ path: '$', message: `${PIPELINE_JSON} is not valid JSON: ${errorMessage(err)}`, code: 'PIPELINE_JSON_INVALID' }];
  }
  const result = validatePipelineFile(parsed);
  return result.ok ? [] : result.problems.map((p) => ({ ...p, code: 'PIPELINE_INVALID' }));
}

export interface PackResult {
  /** The archive; absent when problems were found and `force` was not set. */
  zip?: Buffer;
  /** Names inside the archive, `/`-separated. */
  files: string[];
  problems: Problem[];
}

/**
 * Builds an archive from `dir` after validating its pipeline.json. With problems the zip is
 * only built when `force` is set (an author may want to hand a broken archive to someone).
 */
export async function packFolder(dir: string, options: FolderOptions & { force?: boolean } = {}): Promise<PackResult> {
  // Walk first: a link or special file refuses the pack whatever pipeline.json says.
  const files = await folderFiles(dir, options);
  if (!files.includes(join(resolve(dir), PIPELINE_JSON))) {
    throw coded('PIPELINE_JSON_MISSING', `${dir} has no ${PIPELINE_JSON} at its root`);
  }
  const problems = await pipelineJsonProblems(dir);
  const names = files.map((f) => relative(resolve(dir), f).split(sep).join('/'));
  if (problems.length && !options.force) return { files: names, problems };
  return { zip: await zipFiles(resolve(dir), files), files: names, problems };
}
