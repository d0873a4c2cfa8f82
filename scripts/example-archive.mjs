// Builds examples/cars.mpta from examples/cars/pipeline.json and the fixture models in
// ../shared/fixtures (models are never committed): `npm run example:archive`.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeMpta } from '../shared/dist/testing/mpta.js';
import { fixturePath } from '../shared/dist/testing/fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pipeline = JSON.parse(readFileSync(join(root, 'examples/cars/pipeline.json'), 'utf8'));
const files = {};
for (const name of ['yolov8n_fp32.onnx', 'car_color_cls.onnx']) files[name] = readFileSync(fixturePath(`models/${name}`));
const out = await writeMpta(join(root, 'examples'), 'cars.mpta', { pipeline, files });
console.log(`wrote ${out}`);
