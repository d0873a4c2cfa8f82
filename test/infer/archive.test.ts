import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CodedError } from '@detector-worker/shared/errors';
import { buildMpta, standardMptaSpec, withDeclaredSize, writeMpta, STANDARD_CLASSIFIER_ID, type MptaSpec } from '@detector-worker/testkit/mpta';
import { extractArchive, type ArchiveLimits } from '@detector-worker/infer/models/zip-extract';
import { loadPipelineArchive } from '@detector-worker/infer/models/mpta-layout';

const limits: ArchiveLimits = { maxEntries: 50, maxUncompressedBytes: 64 * 1024 * 1024 };

/** A small valid pipeline; model files are placeholder bytes (loading does not parse ONNX). */
function smallPipeline(): { pipeline: Record<string, unknown> & { branches: Array<Record<string, unknown>> } } {
  return {
    pipeline: {
      modelId: 'det_v1',
      modelFile: 'det.onnx',
      minConfidence: 0.5,
      triggerClasses: ['car'],
      branches: [{ modelId: 'cls_v1', modelFile: 'models/cls.onnx', labelsFile: 'models/cls.txt', minConfidence: 0.3, triggerClasses: ['car'], crop: true, cropClass: 'car' }],
    },
  };
}

function smallSpec(extra: Partial<MptaSpec> = {}): MptaSpec {
  return {
    pipeline: smallPipeline(),
    files: { 'det.onnx': Buffer.alloc(1000, 1), 'models/cls.onnx': Buffer.alloc(300, 2), 'models/cls.txt': 'a\nb\n' },
    ...extra,
  };
}

async function expectCode(promise: Promise<unknown>, code: string, status = 422): Promise<CodedError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof CodedError, `expected a CodedError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.statusCode, status);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

describe('archive loading', () => {
  let work: string;
  let n = 0;
  /** A fresh sub-folder per test: archive file + destination. */
  const place = async (spec: MptaSpec | Buffer): Promise<{ zip: string; dest: string; dir: string }> => {
    const dir = join(work, `case-${++n}`);
    await mkdir(dir, { recursive: true });
    const zip = join(dir, 'in.mpta');
    await writeFile(zip, Buffer.isBuffer(spec) ? spec : await buildMpta(spec));
    return { zip, dest: join(dir, 'out'), dir };
  };
  /** After a failure only the input archive remains: no destination, no temp folders. */
  const assertClean = async (dir: string): Promise<void> => {
    assert.deepEqual(await readdir(dir), ['in.mpta']);
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'dw-archive-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('loads an archive with pipeline.json at the root', async () => {
    const { zip, dest } = await place(smallSpec());
    const loaded = await loadPipelineArchive(zip, dest, limits);
    assert.equal(loaded.dir, dest);
    assert.equal(loaded.archiveDir, dest);
    assert.equal(loaded.pipeline.pipeline.modelId, 'det_v1');
    assert.deepEqual(
      loaded.nodes.map((x) => [x.modelId, x.path, x.bytes]),
      [
        ['det_v1', '$.pipeline', 1000],
        ['cls_v1', '$.pipeline.branches[0]', 300],
      ],
    );
    assert.equal(loaded.nodes[1]!.modelPath, join(dest, 'models', 'cls.onnx'));
    assert.equal(loaded.nodes[1]!.labelsPath, join(dest, 'models', 'cls.txt'));
    assert.equal(loaded.totalModelBytes, 1300);
    assert.equal((await readFile(loaded.nodes[0]!.modelPath)).length, 1000);
    assert.deepEqual((await readdir(join(dest, '..'))).sort(), ['in.mpta', 'out']);
  });

  test('loads an archive whose content sits in one top-level folder', async () => {
    const { zip, dest } = await place(smallSpec({ folder: 'my_pipeline' }));
    const loaded = await loadPipelineArchive(zip, dest, limits);
    assert.equal(loaded.dir, join(dest, 'my_pipeline'));
    assert.equal(loaded.nodes[0]!.modelPath, join(dest, 'my_pipeline', 'det.onnx'));
  });

  test('the first top-level folder holding a pipeline.json wins; __MACOSX is ignored', async () => {
    const other = JSON.stringify({ ...smallPipeline(), pipeline: { ...smallPipeline().pipeline, modelId: 'second' } });
    const { zip, dest } = await place({
      files: {
        '__MACOSX/pipeline.json': '{}',
        'first/pipeline.json': JSON.stringify(smallPipeline()),
        'first/det.onnx': Buffer.alloc(10),
        'first/models/cls.onnx': Buffer.alloc(10),
        'first/models/cls.txt': 'x',
        'second/pipeline.json': other,
      },
    });
    const loaded = await loadPipelineArchive(zip, dest, limits);
    assert.equal(loaded.dir, join(dest, 'first'));
    assert.equal(loaded.pipeline.pipeline.modelId, 'det_v1');
  });

  test('loads the standard two-level fixture archive', async (t) => {
    const spec = await standardMptaSpec(t);
    if (!spec) return;
    const { zip, dest } = await place(spec);
    const loaded = await loadPipelineArchive(zip, dest, limits);
    assert.deepEqual(
      loaded.nodes.map((x) => x.modelId),
      [loaded.pipeline.pipeline.modelId, STANDARD_CLASSIFIER_ID],
    );
    assert.equal(loaded.nodes[0]!.bytes, (await stat(loaded.nodes[0]!.modelPath)).size);
    assert.ok(loaded.totalModelBytes > 12_000_000);
  });

  test('replaces an existing destination folder', async () => {
    const { zip, dest } = await place(smallSpec());
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'stale.txt'), 'old');
    await loadPipelineArchive(zip, dest, limits);
    assert.ok(!existsSync(join(dest, 'stale.txt')));
    assert.ok(existsSync(join(dest, 'pipeline.json')));
    assert.deepEqual((await readdir(join(dest, '..'))).sort(), ['in.mpta', 'out']);
  });

  test('extractArchive reports entries and bytes', async () => {
    const { zip, dest } = await place({ files: { 'a.txt': 'hello', 'sub/': { data: '', dir: true }, 'sub/b.bin': Buffer.alloc(7) } });
    const out = await extractArchive(zip, dest, limits);
    assert.equal(out.dir, dest);
    assert.deepEqual(out.entries, [
      { name: 'a.txt', dir: false, bytes: 5 },
      { name: 'sub', dir: true, bytes: 0 },
      { name: 'sub/b.bin', dir: false, bytes: 7 },
    ]);
    assert.equal(out.totalBytes, 12);
    assert.equal(await readFile(join(dest, 'a.txt'), 'utf8'), 'hello');
  });

  for (const [label, name] of [
    ['zip-slip ../evil', '../evil.onnx'],
    ['a nested ../ that climbs out', 'models/../../evil.onnx'],
    ['an absolute path', '/etc/evil.onnx'],
    ['a backslash path', '..\\evil.onnx'],
    ['a drive letter', 'C:/evil.onnx'],
  ] as const) {
    test(`refuses ${label}`, async () => {
      const { zip, dest, dir } = await place(smallSpec({ files: { ...smallSpec().files, [name]: 'x' } }));
      const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'ARCHIVE_UNSAFE_ENTRY');
      assert.equal(err.details?.entry, name);
      await assertClean(dir);
      assert.ok(!existsSync(join(work, 'evil.onnx')));
    });
  }

  test('refuses a directory entry that climbs out', async () => {
    const { zip, dest, dir } = await place({ files: { '../': { data: '', dir: true } } });
    await expectCode(extractArchive(zip, dest, limits), 'ARCHIVE_UNSAFE_ENTRY');
    await assertClean(dir);
  });

  test('refuses a symlink entry', async () => {
    const { zip, dest, dir } = await place(smallSpec({ files: { ...smallSpec().files, 'link.onnx': { data: '/etc/passwd', unixPermissions: 0o120777 } } }));
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'ARCHIVE_UNSAFE_ENTRY');
    assert.match(err.message, /symbolic link/);
    await assertClean(dir);
  });

  test('refuses too many entries', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`f${i}.txt`] = 'x';
    const { zip, dest, dir } = await place({ files });
    const err = await expectCode(extractArchive(zip, dest, limits), 'ARCHIVE_TOO_MANY_ENTRIES');
    assert.equal(err.details?.entries, 60);
    await assertClean(dir);
  });

  test('refuses a zip bomb by its declared size', async () => {
    const { zip, dest, dir } = await place({ files: { 'zeros.bin': Buffer.alloc(4 * 1024 * 1024) }, compression: 'DEFLATE' });
    assert.ok((await stat(zip)).size < 64 * 1024, 'the bomb compresses well');
    const total = await expectCode(extractArchive(zip, dest, { maxEntries: 10, maxUncompressedBytes: 1024 * 1024 }), 'ARCHIVE_TOO_LARGE');
    assert.match(total.message, /declares/, 'refused from the headers, before inflating');
    const one = await expectCode(extractArchive(zip, dest, { maxEntries: 10, maxUncompressedBytes: 8 * 1024 * 1024, maxEntryBytes: 1024 * 1024 }), 'ARCHIVE_TOO_LARGE');
    assert.equal(one.details?.entry, 'zeros.bin');
    await assertClean(dir);
  });

  test('stops inflating a zip bomb whose headers lie', async () => {
    const bomb = withDeclaredSize(await buildMpta({ files: { 'zeros.bin': Buffer.alloc(4 * 1024 * 1024) }, compression: 'DEFLATE' }), 100);
    const { zip, dest, dir } = await place(bomb);
    const err = await expectCode(extractArchive(zip, dest, { maxEntries: 10, maxUncompressedBytes: 1024 * 1024 }), 'ARCHIVE_TOO_LARGE');
    assert.match(err.message, /inflates to more than/);
    await assertClean(dir);
  });

  test('stops a lying entry at the per-entry cap', async () => {
    const bomb = withDeclaredSize(await buildMpta({ files: { 'a.bin': Buffer.alloc(600 * 1024) }, compression: 'DEFLATE' }), 1);
    const { zip, dest, dir } = await place(bomb);
    const err = await expectCode(extractArchive(zip, dest, { maxEntries: 10, maxUncompressedBytes: 8 * 1024 * 1024, maxEntryBytes: 256 * 1024 }), 'ARCHIVE_TOO_LARGE');
    assert.equal(err.details?.entry, 'a.bin');
    await assertClean(dir);
  });

  test('an entry whose data disagrees with its header is ARCHIVE_CORRUPT', async () => {
    const liar = withDeclaredSize(await buildMpta({ files: { 'a.bin': Buffer.alloc(1000, 3) }, compression: 'DEFLATE' }), 10);
    const { zip, dest, dir } = await place(liar);
    await expectCode(extractArchive(zip, dest, limits), 'ARCHIVE_CORRUPT');
    await assertClean(dir);
  });

  test('refuses garbage as ARCHIVE_NOT_ZIP', async () => {
    const { zip, dest, dir } = await place(Buffer.from('this is not a zip at all, just text'));
    await expectCode(loadPipelineArchive(zip, dest, limits), 'ARCHIVE_NOT_ZIP');
    await assertClean(dir);
  });

  test('missing pipeline.json', async () => {
    const { zip, dest, dir } = await place({ files: { 'model.onnx': 'x', 'a/b/pipeline.json': '{}' } });
    await expectCode(loadPipelineArchive(zip, dest, limits), 'PIPELINE_JSON_MISSING');
    await assertClean(dir);
  });

  test('pipeline.json that is not JSON', async () => {
    const { zip, dest, dir } = await place({ pipeline: '{ "pipeline": { ', files: {} });
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'PIPELINE_JSON_INVALID');
    assert.equal(typeof err.details?.error, 'string');
    await assertClean(dir);
  });

  test('a UTF-8 BOM before the JSON is accepted', async () => {
    const { zip, dest } = await place(smallSpec({ pipeline: `\uFEFF${JSON.stringify(smallPipeline())}` }));
    await loadPipelineArchive(zip, dest, limits);
  });

  test('schema problems come back with their JSON paths', async () => {
    const bad = smallPipeline();
    bad.pipeline.branches[0]!.minConfidence = 2;
    bad.pipeline.colour = 'red';
    const { zip, dest, dir } = await place(smallSpec({ pipeline: bad }));
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'PIPELINE_INVALID');
    const problems = err.details?.problems as Array<{ path: string; message: string }>;
    assert.ok(problems.some((p) => p.path === '$.pipeline.branches[0].minConfidence'), JSON.stringify(problems));
    assert.ok(problems.some((p) => p.path === '$.pipeline.colour'), JSON.stringify(problems));
    await assertClean(dir);
  });

  test('a model file that leaves the pipeline folder is a pipeline problem', async () => {
    const bad = smallPipeline();
    bad.pipeline.branches[0]!.modelFile = '../outside.onnx';
    const { zip, dest, dir } = await place(smallSpec({ pipeline: bad, folder: 'p' }));
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'PIPELINE_INVALID');
    assert.deepEqual(
      (err.details?.problems as Array<{ path: string }>).map((p) => p.path),
      ['$.pipeline.branches[0].modelFile'],
    );
    await assertClean(dir);
  });

  test('a missing model file names the node', async () => {
    const spec = smallSpec();
    delete (spec.files as Record<string, unknown>)['models/cls.onnx'];
    const { zip, dest, dir } = await place(spec);
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'MODEL_FILE_MISSING');
    assert.equal(err.details?.node, '$.pipeline.branches[0]');
    assert.equal(err.details?.path, '$.pipeline.branches[0].modelFile');
    assert.match(err.message, /models\/cls\.onnx/);
    await assertClean(dir);
  });

  test('a missing labels file is reported too', async () => {
    const spec = smallSpec();
    delete (spec.files as Record<string, unknown>)['models/cls.txt'];
    const { zip, dest } = await place(spec);
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'MODEL_FILE_MISSING');
    assert.equal(err.details?.path, '$.pipeline.branches[0].labelsFile');
  });

  test('a .pt model explains how to export it to ONNX', async () => {
    const p = smallPipeline();
    p.pipeline.modelFile = 'det.pt';
    const { zip, dest, dir } = await place(smallSpec({ pipeline: p, files: { ...smallSpec().files, 'det.pt': 'torch' } }));
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'MODEL_FORMAT_UNSUPPORTED');
    assert.match(err.message, /yolo export model=det\.pt format=onnx/);
    assert.match(err.message, /det\.onnx/);
    assert.equal(err.details?.path, '$.pipeline.modelFile');
    await assertClean(dir);
  });

  test('other model formats are refused with the same code', async () => {
    const p = smallPipeline();
    p.pipeline.branches[0]!.modelFile = 'models/cls.tflite';
    const { zip, dest } = await place(smallSpec({ pipeline: p, files: { ...smallSpec().files, 'models/cls.tflite': 'x' } }));
    const err = await expectCode(loadPipelineArchive(zip, dest, limits), 'MODEL_FORMAT_UNSUPPORTED');
    assert.match(err.message, /only \.onnx/);
    assert.equal(err.details?.node, '$.pipeline.branches[0]');
  });
});

// Keep writeMpta exercised: other suites rely on it.
test('writeMpta writes a loadable archive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dw-writempta-'));
  try {
    const path = await writeMpta(join(dir, 'nested'), 'x.mpta', smallSpec());
    const loaded = await loadPipelineArchive(path, join(dir, 'out'), limits);
    assert.equal(loaded.nodes.length, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
