import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildConstantOutputModel } from '@detector-worker/shared/testing/onnx-builder';
import { writeMpta, writeStandardMpta } from '@detector-worker/shared/testing/mpta';

const cli = fileURLToPath(new URL('./mpta.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
const detector = () => {
  const n = 4;
  const values = new Float32Array(6 * n);
  return Buffer.from(buildConstantOutputModel({ inputDims: [1, 3, 64, 64], outputDims: [1, 6, n], values, metadata: { task: 'detect', names: "{0: 'car', 1: 'truck'}" } }));
};

test('validate, inspect and pack with the same loading code as infer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mpta-cli-'));
  try {
    const good = await writeMpta(dir, 'good.mpta', { pipeline: { pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['car'] } }, files: { 'det.onnx': detector() } });
    const ok = run('validate', good);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /valid \(1 model node/);

    const tree = run('inspect', good);
    assert.equal(tree.status, 0, tree.stderr);
    assert.match(tree.stdout, /det {2}\[detect, yolov8, 64x64 letterbox\] {2}det\.onnx/);
    assert.match(tree.stdout, /classes: car, truck/);
    const json = JSON.parse(run('inspect', good, '--json').stdout);
    assert.equal(json.valid, true);
    assert.deepEqual(json.pipeline.classNames, ['car', 'truck']);

    const bad = await writeMpta(dir, 'bad.mpta', { pipeline: { pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 7, triggerClasses: [], extra: 1 } } });
    const invalid = run('validate', bad, '--json');
    assert.equal(invalid.status, 1);
    const report = JSON.parse(invalid.stdout);
    assert.deepEqual(report.problems.map((p: { path: string }) => p.path).sort(), ['$.pipeline.extra', '$.pipeline.minConfidence', '$.pipeline.triggerClasses']);

    const pt = await writeMpta(dir, 'pt.mpta', { pipeline: { pipeline: { modelId: 'det', modelFile: 'det.pt', minConfidence: 0.5, triggerClasses: ['car'] } }, files: { 'det.pt': 'torch' } });
    const ptRun = run('validate', pt);
    assert.equal(ptRun.status, 1);
    assert.match(ptRun.stderr, /yolo export model=det\.pt format=onnx/);

    // A folder: packed, then validated; pack refuses an invalid pipeline.json and symlinks.
    const folder = join(dir, 'src');
    await mkdir(folder);
    await writeFile(join(folder, 'pipeline.json'), JSON.stringify({ pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['car'] } }));
    await writeFile(join(folder, 'det.onnx'), detector());
    assert.equal(run('validate', folder).status, 0);
    const packed = run('pack', folder, '-o', join(dir, 'packed.mpta'));
    assert.equal(packed.status, 0, packed.stderr);
    assert.equal(run('validate', join(dir, 'packed.mpta')).status, 0);
    await writeFile(join(folder, 'pipeline.json'), '{"pipeline": {"modelId": 1}}');
    const refused = run('pack', folder, '-o', join(dir, 'no.mpta'));
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /not packed/);
    await writeFile(join(folder, 'pipeline.json'), JSON.stringify({ pipeline: { modelId: 'det', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['car'] } }));
    await symlink('/etc/passwd', join(folder, 'link'));
    assert.match(run('pack', folder).stderr, /symbolic link/);
    assert.equal(run('frobnicate', folder).status, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('inspect the standard fixture pipeline', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mpta-cli-'));
  try {
    const archive = await writeStandardMpta(t, dir);
    if (!archive) return;
    const r = run('inspect', archive);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /vehicle_det_v1 {2}\[detect, yolov8, 640x640 letterbox\]/);
    assert.match(r.stdout, /└ car_color_cls_v1 {2}\[classify, classify, 224x224 stretch\]/);
    assert.match(r.stdout, /… \(80\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
