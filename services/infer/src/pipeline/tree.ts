/**
 * Pure rules of the pipeline tree (spec/pipeline-semantics.md): regions, branch triggers,
 * expected classes, waitForBranches pre-validation and classification aliases. No I/O, so
 * every rule is unit-tested on plain objects.
 */
import type { PipelineNode } from '@detector-worker/shared/pipeline/schema';
import { iou } from '../inference/nms.js';
import type { TextRead } from '../inference/types.js';
import type { CropOptions } from './ports.js';
import type { ClassificationResult, Detection, OcrResult, Region } from './types.js';

/** For each class, its single highest-confidence detection. */
export function bestRegions(detections: readonly Detection[]): Record<string, Region> {
  const regions: Record<string, Region> = {};
  for (const d of detections) {
    const prior = regions[d.class];
    if (!prior || d.confidence > prior.confidence) regions[d.class] = { bbox: d.bbox, confidence: d.confidence, ...(d.keypoints ? { keypoints: d.keypoints } : {}) };
  }
  return regions;
}

/** Region lookup: exact class name first, then case-insensitive. */
export function findRegion(regions: Record<string, Region>, name: string): Region | undefined {
  if (Object.prototype.hasOwnProperty.call(regions, name)) return regions[name];
  const lower = name.toLowerCase();
  const key = Object.keys(regions).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : regions[key];
}

/** A branch runs when a region of one of its trigger classes meets its minConfidence. */
export function isBranchTriggered(branch: PipelineNode, regions: Record<string, Region>): boolean {
  return branch.triggerClasses.some((c) => {
    const r = findRegion(regions, c);
    return r !== undefined && r.confidence >= branch.minConfidence;
  });
}

/** multiClass + expectedClasses: at least one expected class must be present. */
export function missingExpectedClasses(node: PipelineNode, regions: Record<string, Region>): { satisfied: boolean; missing: string[] } {
  if (!node.multiClass || !node.expectedClasses?.length) return { satisfied: true, missing: [] };
  const missing = node.expectedClasses.filter((c) => !findRegion(regions, c));
  return { satisfied: missing.length < node.expectedClasses.length, missing };
}

/**
 * waitForBranches pre-validation: if a parallel action waits for a branch that the current
 * regions would not trigger, the whole node is aborted before any action or write.
 * Returns the ids of the branches that would not run (empty = go ahead).
 */
export function untriggeredAwaitedBranches(node: PipelineNode, regions: Record<string, Region>): string[] {
  const byId = new Map((node.branches ?? []).map((b) => [b.modelId, b]));
  const out: string[] = [];
  for (const action of node.parallelActions ?? []) {
    if (action.type !== 'postgresql_update_combined') continue;
    for (const id of action.waitForBranches) {
      const b = byId.get(id);
      if (!b || !isBranchTriggered(b, regions)) out.push(id);
    }
  }
  return [...new Set(out)];
}

/**
 * The box a branch gets: its cropClass region; without one, its first trigger class's
 * region, or when that class is absent the best region of its other trigger classes (a
 * plate branch under car/truck/bus, or a reader under a plate detector whose classes are
 * single / double line: the branch was triggered, so it must get a box).
 */
export function cropRegionFor(branch: PipelineNode, regions: Record<string, Region>): Region | undefined {
  if (branch.cropClass !== undefined) return findRegion(regions, branch.cropClass);
  const first = branch.triggerClasses[0];
  const own = first === undefined ? undefined : findRegion(regions, first);
  if (own) return own;
  const found = branch.triggerClasses.map((c) => findRegion(regions, c)).filter((r): r is Region => r !== undefined && r.confidence >= branch.minConfidence);
  return found.reduce<Region | undefined>((best, r) => (!best || r.confidence > best.confidence ? r : best), undefined);
}

/**
 * A classification node's result: top-1 class, the class name as a key of itself (the
 * original did this), the alias field derived from the node id, and an explicit field.
 */
export function classificationResult(node: PipelineNode, className: string, confidence: number): ClassificationResult {
  const result: ClassificationResult = { class: className, confidence, id: null, [className]: className };
  const id = node.modelId.toLowerCase();
  if (id.includes('brand')) result.brand = className;
  else if (id.includes('bodytype') || id.includes('body')) result.body_type = className;
  else if (id.includes('color') || id.includes('colour')) result.color = className;
  if (node.outputField) result[node.outputField] = className;
  // Keep the standard keys authoritative even when a class is named "class" or "confidence".
  result.class = className;
  result.confidence = confidence;
  result.id = null;
  return result;
}

/** Branches run concurrently when the node or any triggered branch says `parallel`. */
export function runBranchesInParallel(node: PipelineNode, triggered: readonly PipelineNode[]): boolean {
  return node.parallel === true || triggered.some((b) => b.parallel === true);
}

/**
 * The detections a full run keeps when the caller names a focus box (a tracked vehicle):
 * the detection overlapping it most (IoU at least `minIou`) comes first, as the primary;
 * detections lying mostly inside the focus (a plate, a windscreen) stay as its regions;
 * everything else in the frame (another car at the next pump) is left out. Empty when
 * nothing overlaps the focus.
 */
export function focusedDetections(detections: readonly Detection[], focus: readonly [number, number, number, number], minIou = 0.1): Detection[] {
  let primary: Detection | undefined;
  let best = minIou;
  for (const d of detections) {
    const overlap = iou(d.bbox, focus);
    if (overlap >= best) {
      best = overlap;
      primary = d;
    }
  }
  if (!primary) return [];
  const inside = detections.filter((d) => d !== primary && insideShare(d.bbox, focus) >= 0.5);
  return [primary, ...inside];
}

type BoxLike = readonly [number, number, number, number];

/** How much of `inner` lies inside `outer`. */
function insideShare(inner: BoxLike, outer: BoxLike): number {
  const area = Math.max(0, inner[2] - inner[0]) * Math.max(0, inner[3] - inner[1]);
  const inter = Math.max(0, Math.min(inner[2], outer[2]) - Math.max(inner[0], outer[0])) * Math.max(0, Math.min(inner[3], outer[3]) - Math.max(inner[1], outer[1]));
  return area > 0 ? inter / area : 0;
}

/** Default least confidence of an OCR read's weakest character. */
export const DEFAULT_OCR_MIN_CONFIDENCE = 0.5;
/** Default widening of an OCR crop: plate detectors box the plate tightly, clipping edge characters. */
export const DEFAULT_OCR_CROP_MARGIN = 0.05;

/**
 * An OCR node's result. Confidence is the minimum over the kept characters: a plate is only
 * as right as its least sure character, and a mean would let six sure characters hide one
 * guess (the minimum also does not shrink with plate length, as a product would).
 */
export function ocrResult(node: PipelineNode, read: TextRead): OcrResult {
  const characters = read.characters.map((c) => ({ char: c.char, confidence: Math.round(c.confidence * 10000) / 10000 }));
  const confidence = characters.length ? Math.min(...characters.map((c) => c.confidence)) : 0;
  const ocr = node.ocr ?? {};
  const minConfidence = ocr.minConfidence ?? DEFAULT_OCR_MIN_CONFIDENCE;
  let reason: string | undefined;
  if (!read.text) reason = 'no characters read';
  else if (ocr.minLength !== undefined && [...read.text].length < ocr.minLength) reason = `"${read.text}" has fewer than ${ocr.minLength} characters`;
  else if (confidence < minConfidence) reason = `"${read.text}": weakest character confidence ${confidence} is below ${minConfidence}`;
  else if (ocr.format !== undefined && !new RegExp(ocr.format, 'u').test(read.text)) reason = `"${read.text}" does not match the format ${ocr.format}`;
  if (reason) return { class: null, confidence, text: null, characters, id: null, reason };
  return { class: read.text, confidence, text: read.text, characters, id: null };
}

/** How an OCR branch's crop is cut from its region: widened, rectified when corners are known. */
export function ocrCropOptions(branch: PipelineNode, region: Region): CropOptions {
  const margin = branch.cropMargin ?? (branch.task === 'ocr' ? DEFAULT_OCR_CROP_MARGIN : 0);
  const rectify = branch.task === 'ocr' && branch.ocr?.rectify !== false && region.keypoints?.length === 4;
  return { ...(margin > 0 ? { margin } : {}), ...(rectify ? { corners: region.keypoints! } : {}) };
}
