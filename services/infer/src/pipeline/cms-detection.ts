/**
 * The flat object the CMS receives in `imageDetection.data.detection`.
 *
 * With a `cmsDetection` mapping in pipeline.json, each CMS field is a template over the
 * primary detection (`{class}`, `{confidence}`), the event context and branch results
 * (`{car_brand_cls_v1.brand}`); a field whose template does not resolve is left out, and a
 * template that is exactly one placeholder keeps the value's type (numbers stay numbers).
 * Without one, the default is documented in the README: class, confidence and each
 * branch's class under a readable key.
 *
 * With an OCR branch anywhere in the tree, the default gains `licensePlateText` and
 * `licensePlateConfidence` (a successful read only), and `licensePlateType`: the class of a
 * classifier beside the reader (a plate-colour classifier) or else of the plate detector
 * the reader hangs under (HyperLPR's single / double line). Those branches are not repeated
 * under their own ids. Mapping templates reach every branch by id, however deep.
 *
 * Either way the object is flat (string, number, boolean, null): the spec's `detection` is
 * flat and the CMS merges it into `currentCar`. Boxes stay in the answer's `result`; a value
 * that is not a scalar (or not a finite number) is left out, like an unresolved template.
 */
import { flatDetection, type FlatDetection } from '@detector-worker/shared/protocol/messages';
import { contextLookup, parseTemplate, renderTemplate, type TemplateValue } from '@detector-worker/shared/templates';
import { branchResultsOf, isOcrResult, type BranchResult, type OcrResult } from './types.js';

export type CmsDetection = FlatDetection;

/** Alias field of a branch result -> CMS key (names from DisplayPersistentData.currentCar). */
const ALIAS_KEYS: Array<[string, string]> = [
  ['brand', 'carBrand'],
  ['model', 'carModel'],
  ['body_type', 'bodyType'],
  ['color', 'carColor'],
];

function scalarFields(result: BranchResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result)) if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  return out;
}

interface PlateFields {
  text?: string;
  confidence?: number;
  type?: string;
  /** Branch results the plate fields stand for. */
  consumed: Set<BranchResult>;
}

/** The plate read of a result tree: the first successful OCR read, else the first OCR result. */
export function plateFields(root: BranchResult): PlateFields {
  const found: Array<{ read: OcrResult; parent: BranchResult; top: BranchResult | undefined }> = [];
  const walk = (node: BranchResult, top: BranchResult | undefined): void => {
    for (const child of Object.values(branchResultsOf(node))) {
      if (isOcrResult(child)) found.push({ read: child, parent: node, top });
      else walk(child, top ?? child);
    }
  };
  walk(root, undefined);
  const pick = found.find((f) => f.read.text !== null) ?? found[0];
  if (!pick) return { consumed: new Set() };
  const consumed = new Set<BranchResult>([pick.read]);
  if (pick.top) consumed.add(pick.top);
  const siblings = Object.values(branchResultsOf(pick.parent));
  const classifier = siblings.find((b) => !isOcrResult(b) && Object.keys(branchResultsOf(b)).length === 0 && !('detections' in b));
  let type: string | undefined;
  if (classifier && typeof classifier.class === 'string') {
    type = classifier.class;
    consumed.add(classifier);
  } else if (pick.parent !== root && typeof pick.parent.class === 'string') type = pick.parent.class;
  return {
    consumed,
    ...(pick.read.text !== null ? { text: pick.read.text, confidence: round(pick.read.confidence) } : {}),
    ...(type !== undefined ? { type } : {}),
  };
}

/** Every branch result of the tree by node id (ids are unique in a pipeline). */
function allBranches(root: BranchResult): Record<string, BranchResult> {
  const out: Record<string, BranchResult> = {};
  const walk = (node: BranchResult): void => {
    for (const [id, child] of Object.entries(branchResultsOf(node))) {
      out[id] ??= child;
      walk(child);
    }
  };
  walk(root);
  return out;
}

export function defaultCmsDetection(result: BranchResult): CmsDetection {
  const flat: CmsDetection = { class: result.class, confidence: round(result.confidence) };
  const plate = plateFields(result);
  if (plate.text !== undefined) {
    flat.licensePlateText = plate.text;
    flat.licensePlateConfidence = plate.confidence!;
  }
  if (plate.type !== undefined) flat.licensePlateType = plate.type;
  for (const [id, branch] of Object.entries(branchResultsOf(result))) {
    if (plate.consumed.has(branch)) continue;
    const fields = branch as Record<string, unknown>;
    const alias = ALIAS_KEYS.find(([field]) => typeof fields[field] === 'string');
    const key = alias ? alias[1] : id;
    if (flat[key] !== undefined) continue;
    flat[key] = branch.class;
    flat[`${key}Confidence`] = round(branch.confidence);
  }
  return flatDetection(flat);
}

export function mappedCmsDetection(mapping: Record<string, string>, result: BranchResult, context: Record<string, unknown>): CmsDetection {
  const branches: Record<string, Record<string, unknown>> = {};
  // A failed read resolves only its reason, so `{reader.confidence}` never goes out without its text.
  for (const [id, b] of Object.entries(allBranches(result))) branches[id] = isOcrResult(b) && b.text === null ? { reason: b.reason ?? null } : scalarFields(b);
  const lookup = contextLookup({ ...context, ...scalarFields(result) }, branches);
  const flat: CmsDetection = {};
  for (const [field, template] of Object.entries(mapping)) {
    const placeholders = parseTemplate(template);
    const only = placeholders.length === 1 && placeholders[0]!.start === 0 && placeholders[0]!.end === template.length ? placeholders[0] : undefined;
    if (only) {
      const value: TemplateValue = lookup(only.name, only.field);
      if (value !== undefined && value !== null) flat[field] = typeof value === 'number' ? round(value) : value;
      continue;
    }
    const { text, missing } = renderTemplate(template, lookup);
    if (missing.length === 0) flat[field] = text;
  }
  return flatDetection(flat);
}

export function cmsDetection(mapping: Record<string, string> | undefined, result: BranchResult | null, context: Record<string, unknown>): CmsDetection | null {
  if (!result) return null;
  return mapping ? mappedCmsDetection(mapping, result, context) : defaultCmsDetection(result);
}

function round(n: number): number {
  return Math.round(n * 10000) / 10000;
}
