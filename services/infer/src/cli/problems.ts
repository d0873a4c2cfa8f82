/**
 * What the `mpta` tool reports: problems of an archive, each with the JSON path into
 * pipeline.json (or `$` for the archive as a whole) and the error code infer answers with.
 */
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import type { PipelineProblem } from '@detector-worker/shared/pipeline/validate';

export interface Problem extends PipelineProblem {
  code: string;
}

interface MissingFile {
  path: string;
  file: string;
}

function isProblemList(value: unknown): value is PipelineProblem[] {
  return Array.isArray(value) && value.length > 0 && value.every((p) => typeof p?.path === 'string' && typeof p?.message === 'string');
}

function isMissingList(value: unknown): value is MissingFile[] {
  return Array.isArray(value) && value.length > 0 && value.every((m) => typeof m?.path === 'string' && typeof m?.file === 'string');
}

/**
 * The problems a load error stands for. The loader stops at the first archive-level
 * failure but carries every schema/action problem (details.problems) and every missing
 * model file (details.missing): all of those are listed, not just the first.
 */
export function problemsOf(err: unknown): Problem[] {
  if (!(err instanceof CodedError)) return [{ path: '$', message: errorMessage(err), code: 'UNEXPECTED' }];
  const details = err.details ?? {};
  if (isProblemList(details.problems)) return details.problems.map((p) => ({ path: p.path, message: p.message, code: err.code }));
  if (isMissingList(details.missing)) return details.missing.map((m) => ({ path: m.path, message: `"${m.file}" is not in the archive`, code: err.code }));
  const path = typeof details.path === 'string' ? details.path : '$';
  return [{ path, message: withoutPath(err.message, path), code: err.code }];
}

/** Messages written for logs often start with the path the report already shows. */
function withoutPath(message: string, path: string): string {
  if (path === '$' || !message.startsWith(path)) return message;
  return message.slice(path.length).replace(/^[:\s]+/, '') || message;
}

/** `path: message [CODE]`, one line per problem. */
export function formatProblem(p: Problem): string {
  return `${p.path}: ${p.message} [${p.code}]`;
}
