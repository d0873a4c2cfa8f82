import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CodedError } from '@detector-worker/shared/errors';
import { buildConstantOutputModel, buildMeanClassifierModel } from '@detector-worker/testkit/onnx-builder';
import { writeMpta, writeStandardMpta } from '@detector-worker/testkit/mpta';
import { main } from '@detector-worker/infer/cli/mpta';

const COCO_LIKE = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign'];
const names = (list: string[]) => `{${list.map((n, i) => `${i}: '${n}'`).join(', ')}}`;

/** A tiny YOLOv8-shaped detector ([1, 4+classes, anchors], no detections) on 64x64 input. */
function detector(classes = COCO_LIKE): Buffer {
  const outputDims = [1, 4 + classes.length, 8];
  return Buffer.from(
    buildConstantOutputModel({ inputDims: [1, 3, 64, 64], outputDims, values: new Float32Array(outputDims[1]! * 8), metadata: { task: 'detect', names: names(classes) } }),
  );
}

function classifier(): Buffer {
  return Buffer.from(buildMeanClassifierModel({ softmax: true, metadata: { task: 'classify', names: names(['red', 'green', 'blue']) } }));
}

/** Detector with a crop classifier below it; servers with credentials that must not show. */
function goodPipeline(): Record<string, unknown> {
  return {
    redis: { host: 'redis.local', port: 6379, password: 'redis-secret' },
    postgresql: { host: 'pg.local', port: 5432, database: 'gas', username: 'writer', password: 'pg-secret' },
    pipeline: {
      modelId: 'vehicles',
      modelFile: 'det.onnx',
      minConfidence: 0.4,
      triggerClasses: ['car', 'truck'],
      actions: [{ type: 'redis_publish', channel: 'events', message: '{display_id}' }],
      branches: [{ modelId: 'colour', modelFile: 'models/cls.onnx', minConfidence: 0.2, triggerClasses: ['car'], crop: true, parallel: true }],
    },
  };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mpta-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) }, {});
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function goodArchive(name = 'good.mpta'): Promise<string> {
  return writeMpta(dir, name, { pipeline: goodPipeline(), files: { 'det.onnx': detector(), 'models/cls.onnx': classifier() } });
}

async function folder(name: string, pipeline: unknown): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, 'models'), { recursive: true });
  await writeFile(join(path, 'pipeline.json'), typeof pipeline === 'string' ? pipeline : JSON.stringify(pipeline));
  await writeFile(join(path, 'det.onnx'), detector());
  await writeFile(join(path, 'models', 'cls.onnx'), classifier());
  return path;
}

const exists = (path: string) => access(path).then(() => true, () => false);

test('validate: a good archive loads, exit 0, text and --json', async () => {
  const archive = await goodArchive();
  const text = await run('validate', archive);
  assert.equal(text.code, 0, text.out + text.err);
  assert.match(text.out, /: valid \(2 models: vehicles, colour\)/);
  const json = await run('validate', archive, '--json');
  assert.equal(json.code, 0);
  const report = JSON.parse(json.out);
  assert.equal(report.valid, true);
  assert.deepEqual(report.problems, []);
});

test('validate: every schema problem is listed with its JSON path, exit 1', async () => {
  const bad = goodPipeline();
  const root = bad.pipeline as Record<string, unknown>;
  root.minConfidence = 7;
  root.extra = true;
  (root.branches as Array<Record<string, unknown>>)[0]!.triggerClasses = 'car';
  const archive = await writeMpta(dir, 'schema.mpta', { pipeline: bad, files: { 'det.onnx': detector(), 'models/cls.onnx': classifier() } });

  const text = await run('validate', archive);
  assert.equal(text.code, 1);
  assert.match(text.out, /invalid, 3 problem\(s\)/);
  for (const path of ['$.pipeline.minConfidence', '$.pipeline.extra', '$.pipeline.branches[0].triggerClasses']) {
    assert.ok(text.out.split('\n').some((l) => l.trim().startsWith(`${path}: `)), `${path} listed in\n${text.out}`);
  }
  const json = JSON.parse((await run('validate', archive, '--json')).out);
  assert.equal(json.valid, false);
  assert.deepEqual(json.problems.map((p: { path: string }) => p.path).sort(), ['$.pipeline.branches[0].triggerClasses', '$.pipeline.extra', '$.pipeline.minConfidence']);
  assert.ok(json.problems.every((p: { code: string }) => p.code === 'PIPELINE_INVALID'));
});

test('validate: a .pt model is refused with the export hint; all missing files are listed', async () => {
  const pt = await writeMpta(dir, 'pt.mpta', { pipeline: { pipeline: { modelId: 'd', modelFile: 'det.pt', minConfidence: 0.5, triggerClasses: ['car'] } }, files: { 'det.pt': 'torch' } });
  const r = await run('validate', pt, '--json');
  assert.equal(r.code, 1);
  const [problem] = JSON.parse(r.out).problems;
  assert.equal(problem.code, 'MODEL_FORMAT_UNSUPPORTED');
  assert.equal(problem.path, '$.pipeline.modelFile');
  assert.match(problem.message, /^"det\.pt" is a PyTorch model.*yolo export model=det\.pt format=onnx/);

  const missing = await writeMpta(dir, 'missing.mpta', { pipeline: goodPipeline() });
  const m = await run('validate', missing);
  assert.equal(m.code, 1);
  assert.match(m.out, /\$\.pipeline\.modelFile: "det\.onnx" is not in the archive \[MODEL_FILE_MISSING\]/);
  assert.match(m.out, /\$\.pipeline\.branches\[0\]\.modelFile: "models\/cls\.onnx" is not in the archive/);
});

test('validate: archive-level and load-time failures keep their codes', async () => {
  const notZip = join(dir, 'not-a-zip.mpta');
  await writeFile(notZip, 'hello');
  const r = JSON.parse((await run('validate', notZip, '--json')).out);
  assert.deepEqual(r.problems.map((p: { code: string; path: string }) => [p.code, p.path]), [['ARCHIVE_NOT_ZIP', '$']]);

  // Decided only once the model is read: the trigger class is not among its class names.
  const pipeline = goodPipeline();
  (pipeline.pipeline as Record<string, unknown>).triggerClasses = ['zebra'];
  const archive = await writeMpta(dir, 'trigger.mpta', { pipeline, files: { 'det.onnx': detector(), 'models/cls.onnx': classifier() } });
  const t = await run('validate', archive);
  assert.equal(t.code, 1);
  assert.match(t.out, /\$\.pipeline\.triggerClasses.*zebra/);
});

test('validate: a folder is packed with the pack code, then validated', async () => {
  const good = await folder('good-folder', goodPipeline());
  const r = await run('validate', good);
  assert.equal(r.code, 0, r.out);
  // The loader, not the packer, judges pipeline.json: same messages as for an archive.
  const bad = await folder('bad-folder', '{"pipeline": {"modelId": 1}}');
  const b = JSON.parse((await run('validate', bad, '--json')).out);
  assert.equal(b.valid, false);
  assert.ok(b.problems.some((p: { path: string }) => p.path === '$.pipeline.modelId'));
  const linked = await folder('linked-folder', goodPipeline());
  await symlink(join(good, 'det.onnx'), join(linked, 'other.onnx'));
  const l = JSON.parse((await run('validate', linked, '--json')).out);
  assert.equal(l.problems[0].code, 'PACK_SYMLINK');
});

test('inspect: the node tree with formats, sizes, class names and actions; no credentials', async () => {
  const archive = await goodArchive('inspect.mpta');
  const r = await run('inspect', archive);
  assert.equal(r.code, 0, r.out);
  const lines = r.out.split('\n');
  assert.deepEqual(lines.slice(0, 2), ['redis: redis.local:6379 db 0 (credentials hidden)', 'postgresql: pg.local:5432 database gas (credentials hidden)']);
  assert.ok(lines.includes('vehicles  [detect, yolov8, 64x64 letterbox]  det.onnx'), r.out);
  assert.ok(lines.includes('    classes: person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light, … (12 classes)'), r.out);
  assert.ok(lines.includes('    trigger: car, truck @ >= 0.4'), r.out);
  assert.ok(lines.includes('    actions: redis_publish'), r.out);
  assert.ok(lines.includes('  └ colour  [classify, classify, 32x32 stretch]  models/cls.onnx'), r.out);
  assert.ok(lines.includes('        classes: red, green, blue'), r.out);
  assert.ok(lines.includes('        trigger: car @ >= 0.2; crop car; parallel'), r.out);
  assert.doesNotMatch(r.out, /secret|writer/);

  const json = await run('inspect', archive, '--json');
  assert.doesNotMatch(json.out, /secret|writer/);
  const d = JSON.parse(json.out);
  assert.equal(d.valid, true);
  assert.equal(d.pipeline.classNames.length, 12);
  assert.deepEqual(d.pipeline.input, { width: 64, height: 64, resize: 'letterbox' });
  assert.deepEqual(d.pipeline.branches[0].classNames, ['red', 'green', 'blue']);
  assert.equal(d.pipeline.branches[0].cropClass, 'car');
  assert.deepEqual(d.redis, { host: 'redis.local', port: 6379, database: 0, credentials: true });

  const invalid = await run('inspect', await writeMpta(dir, 'empty.mpta', { pipeline: { pipeline: {} } }));
  assert.equal(invalid.code, 1);
  assert.match(invalid.out, /\$\.pipeline/);
});

test('pack: builds a valid archive from a folder, leaving out its own output', async () => {
  const src = await folder('pack-src', goodPipeline());
  const out = join(src, 'out.mpta');
  for (let i = 0; i < 2; i++) {
    const r = await run('pack', src, '-o', out, '--json');
    assert.equal(r.code, 0, r.out);
    const result = JSON.parse(r.out);
    assert.equal(result.written, out);
    assert.deepEqual(result.files, ['det.onnx', 'models/cls.onnx', 'pipeline.json']);
  }
  assert.equal((await run('validate', out)).code, 0);
});

test('pack: refuses an invalid pipeline.json (unless --force), links and a folder without pipeline.json', async () => {
  const src = await folder('pack-bad', { pipeline: { modelId: 'x', modelFile: 'det.onnx', minConfidence: 2, triggerClasses: ['car'] } });
  const out = join(dir, 'pack-bad.mpta');
  const refused = await run('pack', src, '-o', out);
  assert.equal(refused.code, 1);
  assert.match(refused.out, /\$\.pipeline\.minConfidence: .*\[PIPELINE_INVALID\]/);
  assert.match(refused.out, /not packed/);
  assert.equal(await exists(out), false);
  const forced = await run('pack', src, '-o', out, '--force');
  assert.equal(forced.code, 0);
  assert.equal(await exists(out), true);

  const notJson = await folder('pack-not-json', '{nope');
  assert.match((await run('pack', notJson, '-o', join(dir, 'x.mpta'))).out, /\$: pipeline\.json is not valid JSON.*\[PIPELINE_JSON_INVALID\]/);

  const linked = await folder('pack-link', goodPipeline());
  await symlink(join(tmpdir(), 'elsewhere'), join(linked, 'models', 'escape'));
  const l = await run('pack', linked, '-o', join(dir, 'link.mpta'));
  assert.equal(l.code, 1);
  assert.match(l.out, /models\/escape is a symbolic link/);
  assert.equal(await exists(join(dir, 'link.mpta')), false);

  const empty = join(dir, 'pack-empty');
  await mkdir(empty);
  const e = await run('pack', empty, '-o', join(dir, 'e.mpta'));
  assert.equal(e.code, 1);
  assert.match(e.out, /no pipeline\.json/);
});

test('usage errors exit 2; --help exits 0', async () => {
  assert.equal((await run()).code, 2);
  assert.equal((await run('frobnicate', 'x')).code, 2);
  assert.equal((await run('validate')).code, 2);
  assert.equal((await run('validate', 'a', 'b')).code, 2);
  assert.equal((await run('validate', 'x', '--bogus')).code, 2);
  assert.equal((await run('inspect', 'x', '--force')).code, 2);
  const missing = await run('validate', join(dir, 'does-not-exist.mpta'));
  assert.equal(missing.code, 2);
  assert.match(missing.err, /cannot read/);
  assert.equal((await run('pack', join(dir, 'no-folder'))).code, 2);
  const help = await run('--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /mpta validate/);
  assert.equal((await run('pack', '--help')).code, 0);
});

test('the compiled bin runs as a child process', async () => {
  // The compiled bin the package publishes, not a copy beside this test.
  const cli = fileURLToPath(import.meta.resolve('@detector-worker/infer/cli/mpta'));
  const archive = await goodArchive('child.mpta');
  const r = spawnSync(process.execPath, [cli, 'validate', archive, '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).valid, true);
  const bad = spawnSync(process.execPath, [cli, 'validate', join(dir, 'nothing-here.mpta')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2);
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: mpta/);
});

test('inspect the standard fixture pipeline', async (t) => {
  const archive = await writeStandardMpta(t, dir);
  if (!archive) return;
  const r = await run('inspect', archive);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /^vehicle_det_v1 {2}\[detect, yolov8, 640x640 letterbox\] {2}yolov8n_fp32\.onnx$/m);
  assert.match(r.out, /^ {4}classes: person, .*, traffic light, … \(80 classes\)$/m);
  assert.match(r.out, /^ {2}└ car_color_cls_v1 {2}\[classify, classify, 224x224 stretch\]/m);
  assert.match(r.out, /^ {8}trigger: car @ >= 0\.2; crop car; parallel$/m);
});
