#!/usr/bin/env node
/**
 * `mpta`: checks and builds `.mpta` archives with the infer service's own loading code.
 *
 *   mpta validate <archive.mpta | folder> [--json]
 *   mpta inspect  <archive.mpta | folder> [--json]
 *   mpta pack     <folder> [-o out.mpta] [--force] [--json]
 *
 * Exit codes: 0 valid / written, 1 the archive (or pipeline.json) has problems, 2 the
 * command line was wrong or its target missing (nothing was checked).
 */
import { realpathSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { loadInferConfig } from '../config.js';
import { describePipeline, renderPipeline } from './inspect.js';
import { packFolder } from './pack.js';
import { formatProblem, problemsOf, type Problem } from './problems.js';
import { validateTarget, type ValidateOptions } from './validate.js';

export const USAGE = `usage: mpta validate <archive.mpta | folder> [--json]
       mpta inspect  <archive.mpta | folder> [--json]
       mpta pack     <folder> [-o out.mpta] [--force] [--json]

  validate  load the archive exactly as infer does; list every problem with its JSON path
  inspect   print the pipeline tree: task, output format, input size, class names, actions
  pack      zip a folder holding pipeline.json (validated first; --force packs it anyway)

  Archive limits follow infer's ARCHIVE_MAX_ENTRIES / ARCHIVE_MAX_MB when set.
  Exit codes: 0 ok, 1 problems found, 2 usage error.`;

/** Where the tool writes: stdout for results, stderr for the tool's own complaints. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const consoleOutput: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

class UsageError extends Error {}

/** Codes that mean the tool could not start checking: reported like a usage error. */
const INVOCATION_CODES = new Set(['CONFIG_INVALID', 'MPTA_TARGET_MISSING', 'PACK_NOT_A_FOLDER', 'PACK_FOLDER_UNREADABLE']);

const OPTIONS = {
  json: { type: 'boolean', default: false },
  out: { type: 'string', short: 'o' },
  force: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = { json: boolean; out?: string; force: boolean; help: boolean };

function parse(args: string[]): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] };
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

function loadOptions(env: NodeJS.ProcessEnv): ValidateOptions {
  const config = loadInferConfig(env);
  return { archive: { maxEntries: config.archiveMaxEntries, maxUncompressedBytes: config.archiveMaxBytes }, intraOpThreads: 1 };
}

function oneTarget(command: string, positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`${command} takes one ${what}${positionals.length ? `, got ${positionals.length}` : ''}`);
  return positionals[0]!;
}

function printProblems(io: Output, header: string, problems: readonly Problem[]): void {
  io.out(header);
  for (const p of problems) io.out(`  ${formatProblem(p)}`);
}

async function validateOrInspect(command: 'validate' | 'inspect', target: string, values: Values, io: Output, env: NodeJS.ProcessEnv): Promise<number> {
  const report = await validateTarget(target, loadOptions(env));
  const described = report.pipeline ? describePipeline(report.pipeline) : undefined;
  if (values.json) {
    const result = { target, valid: report.valid, problems: report.problems, ...(command === 'inspect' && described ? described : {}) };
    io.out(JSON.stringify(result, null, 2));
  } else if (!report.valid) {
    printProblems(io, `${target}: invalid, ${report.problems.length} problem(s)`, report.problems);
  } else if (command === 'inspect') {
    io.out(renderPipeline(described!));
  } else {
    const ids = report.pipeline!.sessionKeys.map((k) => k.slice(k.indexOf('/') + 1));
    io.out(`${target}: valid (${ids.length} model${ids.length === 1 ? '' : 's'}: ${ids.join(', ')})`);
  }
  return report.valid ? 0 : 1;
}

async function pack(folder: string, values: Values, io: Output): Promise<number> {
  const out = resolve(values.out ?? `${basename(resolve(folder))}.mpta`);
  let result;
  try {
    // The archive may be written into the folder itself; never pack an older copy of it.
    result = await packFolder(folder, { force: values.force, exclude: [out] });
  } catch (err) {
    if (err instanceof CodedError && INVOCATION_CODES.has(err.code)) throw err;
    result = { files: [], problems: problemsOf(err) };
  }
  const { zip, files, problems } = result;
  if (zip) await writeFile(out, zip);
  if (values.json) {
    io.out(JSON.stringify({ folder, written: zip ? out : null, bytes: zip?.length ?? 0, files, problems }, null, 2));
  } else {
    if (problems.length) printProblems(io, `${folder}: pipeline.json has ${problems.length} problem(s)`, problems);
    if (zip) io.out(`wrote ${out} (${files.length} file(s), ${zip.length} bytes)${problems.length ? ' despite the problems (--force)' : ''}`);
    else io.out('not packed (--force packs it anyway)');
  }
  return zip ? 0 : 1;
}

/** Runs one command; resolves to the exit code. */
export async function main(argv: readonly string[], io: Output = consoleOutput, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined) {
      io.err(USAGE);
      return 2;
    }
    if (command === 'help' || command === '--help' || command === '-h') {
      io.out(USAGE);
      return 0;
    }
    const { values, positionals } = parse(rest);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    switch (command) {
      case 'validate':
      case 'inspect':
        if (values.out !== undefined || values.force) throw new UsageError(`-o and --force belong to pack`);
        return await validateOrInspect(command, oneTarget(command, positionals, 'archive or folder'), values, io, env);
      case 'pack':
        return await pack(oneTarget(command, positionals, 'folder'), values, io);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`mpta: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof CodedError && INVOCATION_CODES.has(err.code)) {
      io.err(`mpta: ${err.message}`);
      return 2;
    }
    io.err(`mpta: ${errorMessage(err)}`);
    return 1;
  }
}

// Run when executed (also through the node_modules/.bin link), not when imported by tests.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  process.exitCode = await main(process.argv.slice(2));
}
