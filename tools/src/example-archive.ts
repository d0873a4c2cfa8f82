// Builds examples/cars.mpta from examples/cars/pipeline.json and the fixture models in
// ../shared/fixtures (models are never committed): `npm run example:archive`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePath, repoRoot } from '@detector-worker/testkit/fixtures';
import { writeMpta } from '@detector-worker/testkit/mpta';

const pipeline = JSON.parse(readFileSync(join(repoRoot, 'examples/cars/pipeline.json'), 'utf8')) as Record<string, unknown>;
const files: Record<string, Buffer> = {};
for (const name of ['yolov8n_fp32.onnx', 'car_color_cls.onnx', 'plate_det_y5fu_320.onnx', 'plate_ocr_cct_xs_global.onnx', 'plate_ocr_cct_xs_global.yaml']) files[name] = readFileSync(fixturePath(`models/${name}`));
const out = await writeMpta(join(repoRoot, 'examples'), 'cars.mpta', { pipeline, files });
console.log(`wrote ${out}`);
