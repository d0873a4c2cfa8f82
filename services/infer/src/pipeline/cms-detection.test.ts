import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cmsDetection } from './cms-detection.js';
import type { DetectionNodeResult } from './types.js';

const result: DetectionNodeResult = {
  class: 'car',
  confidence: 0.91234,
  bbox: [1, 2, 3, 4],
  id: null,
  detections: [],
  regions: {},
  session_id: 's-1',
  branch_results: {
    car_brand_cls_v1: { class: 'Honda', confidence: 0.9, id: null, Honda: 'Honda', brand: 'Honda' },
    car_bodytype_cls_v1: { class: 'Sedan "4-door"', confidence: 0.8, id: null, body_type: 'Sedan "4-door"' },
    plate_color: { class: 'blue', confidence: 0.7, id: null },
  },
};

test('default flat detection: primary class and each branch under a readable key, no boxes', () => {
  assert.deepEqual(cmsDetection(undefined, result, {}), {
    class: 'car',
    confidence: 0.9123,
    carBrand: 'Honda',
    carBrandConfidence: 0.9,
    bodyType: 'Sedan "4-door"',
    bodyTypeConfidence: 0.8,
    plate_color: 'blue',
    plate_colorConfidence: 0.7,
  });
});

test('mapped flat detection: templates over branches and context, unresolved fields left out, single placeholders keep their type', () => {
  const mapping = {
    carBrand: '{car_brand_cls_v1.brand}',
    bodyType: '{car_bodytype_cls_v1.body_type}',
    licensePlateText: '{plate_ocr.text}',
    licensePlateConfidence: '{plate_color.confidence}',
    label: '{class} at {camera_id}',
  };
  assert.deepEqual(cmsDetection(mapping, result, { camera_id: 'd;c' }), {
    carBrand: 'Honda',
    bodyType: 'Sedan "4-door"',
    licensePlateConfidence: 0.7,
    label: 'car at d;c',
  });
});

test('no result, no detection', () => {
  assert.equal(cmsDetection(undefined, null, {}), null);
});

const isFlat = (d: Record<string, unknown>) => Object.values(d).every((v) => v === null || ['string', 'boolean'].includes(typeof v) || (typeof v === 'number' && Number.isFinite(v)));

test('detections stay flat whatever the result and the mapping hold', () => {
  const hostile = {
    ...result,
    confidence: Number.NaN,
    branch_results: { weird: { class: 'x', confidence: Number.POSITIVE_INFINITY, id: null, nested: { a: 1 }, list: [1, 2] } },
  } as unknown as DetectionNodeResult;
  const byDefault = cmsDetection(undefined, hostile, {})!;
  assert.ok(isFlat(byDefault), JSON.stringify(byDefault));
  assert.deepEqual(byDefault, { class: 'car', weird: 'x' }, 'non-finite confidences are left out');
  const mapped = cmsDetection({ box: '{bbox}', nested: '{weird.nested}', list: '{weird.list}', ctx: '{obj}', conf: '{confidence}', ok: '{class}' }, hostile, { obj: { deep: true } })!;
  assert.deepEqual(mapped, { ok: 'car' }, 'arrays, objects and NaN are left out, like unresolved templates');
});

const ocr = (text: string | null, confidence = 0.97) => ({ class: text, confidence, text, characters: [], id: null, ...(text ? {} : { reason: 'weak' }) });
const node = (cls: string, branch_results: DetectionNodeResult['branch_results']): DetectionNodeResult => ({ class: cls, confidence: 0.8, bbox: [0, 0, 1, 1], id: null, detections: [], regions: {}, session_id: null, branch_results });

test('a nested plate read: licensePlateText / Confidence / Type, the plate detector not repeated', () => {
  const tree = node('car', { plate_det: node('single', { plate_ocr: ocr('DR68651', 0.991234) }), car_color_cls_v1: { class: 'red', confidence: 0.6, id: null, color: 'red' } });
  assert.deepEqual(cmsDetection(undefined, tree, {}), {
    class: 'car',
    confidence: 0.8,
    licensePlateText: 'DR68651',
    licensePlateConfidence: 0.9912,
    licensePlateType: 'single',
    carColor: 'red',
    carColorConfidence: 0.6,
  });
});

test('a plate-colour classifier beside the reader is the plate type; a failed read sends no text', () => {
  const tree = node('car', { plate_det: node('single', { plate_ocr: ocr(null, 0.2), plate_colour: { class: 'blue', confidence: 0.9, id: null, color: 'blue' } }) });
  assert.deepEqual(cmsDetection(undefined, tree, {}), { class: 'car', confidence: 0.8, licensePlateType: 'blue' });
});

test('a reader straight under the root: text without a type; mappings reach nested branches', () => {
  assert.deepEqual(cmsDetection(undefined, node('single', { plate_ocr: ocr('KRW301') }), {}), { class: 'single', confidence: 0.8, licensePlateText: 'KRW301', licensePlateConfidence: 0.97 });
  const tree = node('car', { plate_det: node('double', { plate_ocr: ocr('AD799KB') }) });
  assert.deepEqual(cmsDetection({ plate: '{plate_ocr.text}', plateConf: '{plate_ocr.confidence}', layout: '{plate_det.class}' }, tree, {}), { plate: 'AD799KB', plateConf: 0.97, layout: 'double' });
});

test('a mapping over a failed read resolves neither its text nor its confidence', () => {
  const tree = node('car', { plate_det: node('single', { plate_ocr: ocr(null, 0.2) }) });
  assert.deepEqual(cmsDetection({ t: '{plate_ocr.text}', c: '{plate_ocr.confidence}', why: '{plate_ocr.reason}', type: '{plate_det.class}' }, tree, {}), { why: 'weak', type: 'single' });
});
