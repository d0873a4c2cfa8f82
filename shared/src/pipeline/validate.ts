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

// verbose: union errors then carry their member schemas, which name the allowed action types.
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validateSchema = ajv.compile<PipelineFile>(PipelineFileSchema);

/** One JSON-path step: `[0]` for indices, `.key` for identifiers, `["odd key"]` otherwise. */
function pathStep(seg: string): string {
  return /^\d+$/.test(seg) ? `[${seg}]` : /^[A-Za-z_$][\w$]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
}

/** `/pipeline/branches/0/modelId` -> `$.pipeline.branches[0].modelId` */
export function pointerToPath(pointer: string): string {
  if (!pointer) return '$';
  return (
    '$' +
    pointer
      .split('/')
      .slice(1)
      .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map(pathStep)
      .join('')
  );
}

function describe(err: ErrorObject): PipelineProblem {
  let path = pointerToPath(err.instancePath);
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    path = `${path}${pathStep(extra)}`;
    message = 'is not a known key';
  } else if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    path = `${path}${pathStep(missing)}`;
    message = 'is required';
  }
  return { path, message };
}

/** The `type` constants of a union's object members (from the verbose error's schema). */
function memberTypes(union: ErrorObject): string[] {
  const members = Array.isArray(union.schema) ? (union.schema as Array<{ properties?: { type?: { const?: unknown } } }>) : [];
  return members.map((m) => m.properties?.type?.const).filter((c): c is string => typeof c === 'string');
}

const within = (path: string, base: string): boolean => path === base || path.startsWith(`${base}/`);

/**
 * Ajv reports a failed `anyOf` once per member, so an action with one wrong field would
 * also list every other action type's missing keys. Per union: a union of literals becomes
 * one "must be one of" problem; a union of objects told apart by `type` keeps only the
 * errors of the member whose `type` matched, or one problem about `type` when none did.
 */
function simplify(errors: ErrorObject[]): PipelineProblem[] {
  const dropped = new Set<ErrorObject>();
  const extra = new Map<ErrorObject, PipelineProblem>();
  // Outer unions first, so that a nested union inside a discarded member is skipped.
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const union of unions) {
    if (dropped.has(union)) continue;
    dropped.add(union);
    const prefix = `${union.schemaPath}/`;
    const members = new Map<string, ErrorObject[]>();
    for (const e of errors) {
      if (e === union || !e.schemaPath.startsWith(prefix) || !within(e.instancePath, union.instancePath)) continue;
      const member = e.schemaPath.slice(prefix.length).split('/')[0] ?? '';
      members.set(member, [...(members.get(member) ?? []), e]);
    }
    const memberErrors = [...members.values()];
    const allOf = memberErrors.flat();
    // TypeBox literals are `{ type, const }`, so a wrong value fails `const` and maybe `type`.
    const literal =
      memberErrors.length > 0 &&
      memberErrors.every((errs) => errs.some((e) => e.keyword === 'const') && errs.every((e) => e.instancePath === union.instancePath && (e.keyword === 'const' || e.keyword === 'type')));
    if (literal) {
      allOf.forEach((e) => dropped.add(e));
      const allowed = memberErrors.map((errs) => String((errs.find((e) => e.keyword === 'const')!.params as { allowedValue: unknown }).allowedValue));
      extra.set(union, { path: pointerToPath(union.instancePath), message: `must be one of ${allowed.join(', ')}` });
      continue;
    }
    const typePath = `${union.instancePath}/type`;
    const typeMissing = (e: ErrorObject) => e.keyword === 'required' && e.instancePath === union.instancePath && (e.params as { missingProperty?: string }).missingProperty === 'type';
    const typeMismatch = (e: ErrorObject) => e.keyword === 'const' && e.instancePath === typePath;
    const discriminated = memberErrors.length > 1 && allOf.some((e) => typeMismatch(e) || typeMissing(e));
    if (!discriminated) continue;
    const matched = [...members.entries()].filter(([, errs]) => !errs.some((e) => typeMismatch(e) || typeMissing(e)));
    if (matched.length === 1) {
      for (const [key, errs] of members) if (key !== matched[0]![0]) errs.forEach((e) => dropped.add(e));
      continue;
    }
    if (matched.length === 0) {
      allOf.forEach((e) => dropped.add(e));
      const allowed = memberTypes(union);
      const missing = allOf.some(typeMissing);
      extra.set(union, {
        path: pointerToPath(typePath),
        message: missing ? `is required${allowed.length ? ` (one of ${allowed.join(', ')})` : ''}` : allowed.length ? `must be one of ${allowed.join(', ')}` : 'is not a known type',
      });
    }
  }

  const seen = new Set<string>();
  const out: PipelineProblem[] = [];
  for (const err of errors) {
    const p = extra.get(err) ?? (dropped.has(err) ? undefined : describe(err));
    if (!p) continue;
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
    if (node.task === 'ocr') {
      if (node.branches?.length) problems.push({ path: `${path}.branches`, message: 'an OCR node reads text and has no regions, so it cannot have branches' });
      const ocr = node.ocr ?? {};
      if (ocr.config && ocr.alphabet) problems.push({ path: `${path}.ocr.alphabet`, message: 'give the alphabet in pipeline.json or in the config file, not both' });
      if (ocr.dictionary && (ocr.alphabet || ocr.config)) problems.push({ path: `${path}.ocr.dictionary`, message: 'a CTC dictionary excludes a fixed-slot alphabet or config' });
      if (ocr.padChar && ocr.alphabet && !ocr.alphabet.includes(ocr.padChar)) problems.push({ path: `${path}.ocr.padChar`, message: 'must be one of the alphabet characters' });
      if (ocr.format !== undefined) {
        try {
          new RegExp(ocr.format, 'u');
        } catch (err) {
          problems.push({ path: `${path}.ocr.format`, message: `is not a valid regular expression: ${err instanceof Error ? err.message : String(err)}` });
        }
      }
    } else if (node.ocr) {
      problems.push({ path: `${path}.ocr`, message: 'belongs to a node with task "ocr"' });
    }
    // The relay tracks what the root detector sees; a branch has no frames of its own.
    if (node.tracking && path !== '$.pipeline') problems.push({ path: `${path}.tracking`, message: 'only the root node tracks vehicles' });
    (node.branches ?? []).forEach((b, i) => walk(b, `${path}.branches[${i}]`));
  };
  walk(file.pipeline, '$.pipeline');
  const t = file.pipeline.tracking;
  if (t) {
    if (t.lowScore !== undefined && t.highScore !== undefined && t.lowScore > t.highScore) problems.push({ path: '$.pipeline.tracking.lowScore', message: 'must not exceed highScore' });
    const zone = t.zone;
    const fraction = (v: number): boolean => v > 0 && v < 1;
    if (zone && zone.some(([x, y]) => x > 1 || y > 1) && zone.some(([x, y]) => fraction(x) || fraction(y))) {
      problems.push({ path: '$.pipeline.tracking.zone', message: 'mixes normalised (0..1) and pixel coordinates' });
    }
  }
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
