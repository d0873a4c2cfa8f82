/**
 * Validates a parsed `pipeline.json`: first the JSON Schema (every key, every type), then
 * the cross-references a schema cannot express (unique node ids, waitForBranches naming
 * real child branches). Every problem is reported with its JSON path so an archive author
 * can fix all of them in one go.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { PipelineFileSchema, type PipelineFile, type PipelineNode } from './schema.js';

export interface PipelineProblem {
  /** JSON path into pipeline.json, e.g. `$.pipeline.branches[0].minConfidence`. */
  path: string;
  message: string;
}

export type PipelineValidation = { ok: true; value: PipelineFile } | { ok: false; problems: PipelineProblem[] };

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSchema = ajv.compile<PipelineFile>(PipelineFileSchema);

/** `/pipeline/branches/0/modelId` -> `$.pipeline.branches[0].modelId` */
export function pointerToPath(pointer: string): string {
  if (!pointer) return '$';
  return (
    '$' +
    pointer
      .split('/')
      .slice(1)
      .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : /^[A-Za-z_$][\w$]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`))
      .join('')
  );
}

function describe(err: ErrorObject): PipelineProblem {
  let path = pointerToPath(err.instancePath);
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    path = `${path}.${extra}`;
    message = 'is not a known key';
  } else if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    path = `${path}.${missing}`;
    message = 'is required';
  }
  return { path, message };
}

/** Union errors repeat once per member; keep the most specific few. */
function simplify(errors: ErrorObject[]): PipelineProblem[] {
  const actionTypeMismatch = (e: ErrorObject) => e.keyword === 'const' && e.instancePath.endsWith('/type');
  const relevant = errors.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf');
  const seen = new Set<string>();
  const out: PipelineProblem[] = [];
  for (const err of relevant) {
    // For unions of actions: if some member matched the `type`, drop the noise from the others.
    if (actionTypeMismatch(err)) {
      const base = err.instancePath.slice(0, -'/type'.length);
      const siblingsWithOtherErrors = relevant.some((o) => o !== err && o.instancePath.startsWith(base) && !actionTypeMismatch(o));
      const allTypeMismatches = relevant.filter((o) => actionTypeMismatch(o) && o.instancePath === err.instancePath).length;
      if (siblingsWithOtherErrors && allTypeMismatches < 3) continue;
      if (allTypeMismatches >= 3) {
        const p = { path: pointerToPath(err.instancePath), message: 'must be one of redis_save_image, redis_publish, postgresql_update_combined' };
        const key = `${p.path}|${p.message}`;
        if (!seen.has(key)) {
          seen.add(key);
          out.push(p);
        }
        continue;
      }
    }
    const p = describe(err);
    const key = `${p.path}|${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function checkReferences(file: PipelineFile): PipelineProblem[] {
  const problems: PipelineProblem[] = [];
  const ids = new Map<string, string>();
  const walk = (node: PipelineNode, path: string): void => {
    const prior = ids.get(node.modelId);
    if (prior) problems.push({ path: `${path}.modelId`, message: `duplicates the modelId at ${prior}` });
    else ids.set(node.modelId, `${path}.modelId`);
    const childIds = new Set((node.branches ?? []).map((b) => b.modelId));
    (node.parallelActions ?? []).forEach((action, i) => {
      if (action.type !== 'postgresql_update_combined') return;
      action.waitForBranches.forEach((id, j) => {
        if (!childIds.has(id)) problems.push({ path: `${path}.parallelActions[${i}].waitForBranches[${j}]`, message: `names no branch of this node ("${id}")` });
      });
    });
    if (node.expectedClasses && !node.multiClass) {
      // Allowed (ignored by the original), but worth telling the author.
    }
    (node.branches ?? []).forEach((b, i) => walk(b, `${path}.branches[${i}]`));
  };
  walk(file.pipeline, '$.pipeline');
  return problems;
}

export function validatePipelineFile(input: unknown): PipelineValidation {
  if (!validateSchema(input)) return { ok: false, problems: simplify(validateSchema.errors ?? []) };
  const problems = checkReferences(input);
  if (problems.length) return { ok: false, problems };
  return { ok: true, value: input };
}

/** Depth-first list of every node with its JSON path (root first). */
export function listNodes(root: PipelineNode): Array<{ node: PipelineNode; path: string; depth: number }> {
  const out: Array<{ node: PipelineNode; path: string; depth: number }> = [];
  const walk = (node: PipelineNode, path: string, depth: number): void => {
    out.push({ node, path, depth });
    (node.branches ?? []).forEach((b, i) => walk(b, `${path}.branches[${i}]`, depth + 1));
  };
  walk(root, '$.pipeline', 0);
  return out;
}
