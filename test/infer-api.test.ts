/**
 * The infer service over real HTTP on loopback: single-flight cold starts, reloads, LRU
 * eviction, real-model detections, and every bad-input path answering a coded 4xx/5xx while
 * other models keep serving. Archives and odd models are built at test time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { pino } from 'pino';
import { request } from 'undici';
import { loadInferConfig } from '@detector-worker/infer/config';
import { startInfer, type RunningInfer } from '@detector-worker/infer/start';
import { fixture } from '@detector-worker/testkit/fixtures';
import { buildConstantOutputModel, buildWeirdOutputModel } from '@detector-worker/testkit/onnx-builder';
import { writeMpta, writeStandardMpta } from '@detector-worker/testkit/mpta';

let work: string;
let infer: RunningInfer;

async function post(modelId: string, body: Buffer, query = '', headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const r = await request(`${infer.url}/v1/models/${modelId}/infer${query}`, { method: 'POST', body, headers: { 'content-type': 'image/jpeg', ...headers } });
  return { status: r.statusCode, body: await r.body.json(), headers: r.headers };
}

async function put(modelId: string, modelUrl: string): Promise<{ status: number; body: any }> {
  const r = await request(`${infer.url}/v1/models/${modelId}`, { method: 'PUT', body: JSON.stringify({ modelUrl }), headers: { 'content-type': 'application/json' } });
  return { status: r.statusCode, body: await r.body.json() };
}

async function get(path: string): Promise<any> {
  return (await request(`${infer.url}${path}`)).body.json();
}

const url = (path: string) => `file://${path}`;
let smallJpeg: Buffer;
let coldQuery = '';
/** A request to the small fake pipeline, reloading it if LRU evicted it. */
const postCold = (body: Buffer) => post('cold', body, coldQuery);

/** A fake 2-class detector: one confident 'thing' box in the middle of a 64x64 input. */
function fakeDetector(): Uint8Array {
  const n = 4;
  const values = new Float32Array(6 * n);
  // rows: cx, cy, w, h, score(thing), score(other); anchor 0 is the box.
  values[0 * n] = 32;
  values[1 * n] = 32;
  values[2 * n] = 20;
  values[3 * n] = 20;
  values[4 * n] = 0.9;
  return buildConstantOutputModel({ inputDims: [1, 3, 64, 64], outputDims: [1, 6, n], values, metadata: { task: 'detect', names: "{0: 'thing', 1: 'other'}", imgsz: '[64, 64]' } });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'infer-api-'));
  smallJpeg = await sharp({ create: { width: 128, height: 96, channels: 3, background: { r: 200, g: 30, b: 30 } } }).jpeg().toBuffer();
  const config = { ...loadInferConfig({}), host: '127.0.0.1', port: 0, cacheDir: join(work, 'cache'), maxModels: 3, failedRetryMs: 0, maxImagePixels: 4_000_000, archiveMaxBytes: 50 * 1024 * 1024, downloadBodyTimeoutMs: 500, downloadConnectTimeoutMs: 500 };
  infer = await startInfer(config, pino({ level: 'silent' }));
});

after(async () => {
  await infer?.close();
  await rm(work, { recursive: true, force: true });
});

describe('synthetic models (no fixtures needed)', () => {
  test('20 concurrent first requests share one download and one load', async () => {
    const archive = await writeMpta(work, 'fake.mpta', { pipeline: { pipeline: { modelId: 'fake', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(fakeDetector()) } });
    coldQuery = `?modelUrl=${encodeURIComponent(url(archive))}`;
    const before = (await get('/v1/models')).stats;
    const answers = await Promise.all(Array.from({ length: 20 }, () => post('cold', smallJpeg, `?modelUrl=${encodeURIComponent(url(archive))}`)));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    const stats = (await get('/v1/models')).stats;
    assert.equal(stats.downloads - before.downloads, 1);
    assert.equal(stats.loads - before.loads, 1);
    const a = answers[0]!.body;
    assert.equal(a.result.class, 'thing');
    assert.equal(a.result.confidence, 0.9);
    // The 64x64 input letterboxes a 128x96 image at scale 0.5 with 8 px padding on top.
    assert.deepEqual(a.result.bbox, [44, 28, 84, 68]);
    assert.deepEqual(a.detection.class, 'thing');
  });

  test('same modelId with another modelUrl reloads; a failed reload keeps the old one serving', async () => {
    const a = await writeMpta(work, 'a.mpta', { pipeline: { pipeline: { modelId: 'a', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(fakeDetector()) } });
    const b = await writeMpta(work, 'b.mpta', { pipeline: { pipeline: { modelId: 'b', modelFile: 'det.onnx', minConfidence: 0.95, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(fakeDetector()) } });
    assert.equal((await put('swap', url(a))).status, 200);
    assert.equal((await post('swap', smallJpeg)).body.result.class, 'thing');
    assert.equal((await put('swap', url(b))).status, 200);
    assert.equal((await get('/v1/models/swap')).modelUrl, url(b));
    assert.equal((await post('swap', smallJpeg)).body.result, null, 'new archive (minConfidence 0.95) is in use');
    const broken = await writeMpta(work, 'broken.mpta', { pipeline: '{ not json' });
    assert.equal((await put('swap', url(broken))).status, 422);
    assert.equal((await get('/v1/models/swap')).state, 'ready');
    assert.equal((await post('swap', smallJpeg)).status, 200, 'previous archive still serves');
  });

  test('least-recently-used pipelines are evicted past MAX_MODELS (3)', async () => {
    const archive = await writeMpta(work, 'lru.mpta', { pipeline: { pipeline: { modelId: 'x', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['thing'] } }, files: { 'det.onnx': Buffer.from(fakeDetector()) } });
    for (const id of ['lru1', 'lru2', 'lru3']) assert.equal((await put(id, url(archive))).status, 200);
    await post('lru1', smallJpeg); // lru2 is now the least recently used
    assert.equal((await put('lru4', url(archive))).status, 200);
    const ids = (await get('/v1/models')).models.filter((m: any) => m.state === 'ready').map((m: any) => m.modelId);
    assert.ok(!ids.includes('lru2'), `lru2 evicted: ${ids}`);
    assert.ok(ids.includes('lru1') && ids.includes('lru4'));
    assert.equal(ids.length, 3);
  });

  const badArchives: Array<[string, () => Promise<string>, number, string, ((b: any) => void)?]> = [
    ['not a zip', async () => writeFileIn('notzip.mpta', 'hello, not a zip'), 422, 'ARCHIVE_NOT_ZIP'],
    ['zip-slip entry', async () => writeMpta(work, 'slip.mpta', { pipeline: { pipeline: {} }, files: { '../evil.onnx': 'x' } }), 422, 'ARCHIVE_UNSAFE_ENTRY'],
    ['symlink entry', async () => writeMpta(work, 'link.mpta', { pipeline: { pipeline: {} }, files: { 'm.onnx': { data: '/etc/passwd', unixPermissions: 0o120777 } } }), 422, 'ARCHIVE_UNSAFE_ENTRY'],
    ['missing pipeline.json', async () => writeMpta(work, 'nopipe.mpta', { files: { 'a.onnx': 'x' } }), 422, 'PIPELINE_JSON_MISSING'],
    ['invalid pipeline.json', async () => writeMpta(work, 'badjson.mpta', { pipeline: '{"pipeline": ' }), 422, 'PIPELINE_JSON_INVALID'],
    [
      'schema-invalid pipeline.json',
      async () => writeMpta(work, 'schema.mpta', { pipeline: { pipeline: { modelId: 'a', modelFile: 'a.onnx', minConfidence: 2, triggerClasses: ['car'] } } }),
      422,
      'PIPELINE_INVALID',
      (b) => assert.ok(b.problems.some((p: any) => p.path === '$.pipeline.minConfidence'), JSON.stringify(b.problems)),
    ],
    ['missing model file', async () => writeMpta(work, 'nomodel.mpta', { pipeline: { pipeline: { modelId: 'a', modelFile: 'a.onnx', minConfidence: 0.5, triggerClasses: ['car'] } } }), 422, 'MODEL_FILE_MISSING'],
    [
      '.pt model',
      async () => writeMpta(work, 'pt.mpta', { pipeline: { pipeline: { modelId: 'a', modelFile: 'a.pt', minConfidence: 0.5, triggerClasses: ['car'] } }, files: { 'a.pt': 'torch' } }),
      422,
      'MODEL_FORMAT_UNSUPPORTED',
      (b) => assert.match(b.message, /yolo export model=a\.pt format=onnx/),
    ],
    ['corrupt ONNX', async () => writeMpta(work, 'corrupt.mpta', { pipeline: { pipeline: { modelId: 'a', modelFile: 'a.onnx', minConfidence: 0.5, triggerClasses: ['car'] } }, files: { 'a.onnx': Buffer.from('definitely not protobuf \x08\xff\xff') } }), 422, 'MODEL_CORRUPT'],
    [
      'ONNX output no decoder understands',
      async () => writeMpta(work, 'weird.mpta', { pipeline: { pipeline: { modelId: 'a', modelFile: 'a.onnx', minConfidence: 0.5, triggerClasses: ['car'], classNames: ['car'] } }, files: { 'a.onnx': Buffer.from(buildWeirdOutputModel()) } }),
      422,
      'MODEL_OUTPUT_UNSUPPORTED',
    ],
    [
      'model input that is not [N,3,H,W]',
      async () =>
        writeMpta(work, 'gray.mpta', {
          pipeline: { pipeline: { modelId: 'a', modelFile: 'a.onnx', minConfidence: 0.5, triggerClasses: ['car'], classNames: ['car'] } },
          files: { 'a.onnx': Buffer.from(buildConstantOutputModel({ inputDims: [1, 1, 32, 32], outputDims: [1, 5, 4], values: new Float32Array(20) })) },
        }),
      422,
      'MODEL_INPUT_UNSUPPORTED',
    ],
    [
      'branch triggered by a class its parent never produces',
      async () =>
        writeMpta(work, 'orphan.mpta', {
          pipeline: {
            pipeline: {
              modelId: 'det',
              modelFile: 'det.onnx',
              minConfidence: 0.5,
              triggerClasses: ['thing'],
              branches: [{ modelId: 'child', modelFile: 'det.onnx', minConfidence: 0.5, triggerClasses: ['Frontal'] }],
            },
          },
          files: { 'det.onnx': Buffer.from(fakeDetector()) },
        }),
      422,
      'PIPELINE_INVALID',
      (b) => assert.ok(b.problems.some((p: any) => p.path === '$.pipeline.branches[0].triggerClasses[0]'), JSON.stringify(b)),
    ],
    [
      'zip bomb',
      async () => writeMpta(work, 'bomb.mpta', { compression: 'DEFLATE', pipeline: { pipeline: {} }, files: { 'zeros.bin': Buffer.alloc(60 * 1024 * 1024) } }),
      422,
      'ARCHIVE_TOO_LARGE',
    ],
  ];

  async function writeFileIn(name: string, content: string): Promise<string> {
    const { writeFile } = await import('node:fs/promises');
    const p = join(work, name);
    await writeFile(p, content);
    return p;
  }

  for (const [name, make, status, code, check] of badArchives) {
    test(`bad archive: ${name} -> ${status} ${code}, and other models keep serving`, async () => {
      const r = await put(`bad-${code.toLowerCase()}`, url(await make()));
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.code, code, JSON.stringify(r.body));
      check?.(r.body);
      assert.equal((await postCold(smallJpeg)).status, 200);
    });
  }

  test('bad images: empty, not an image, truncated, over the pixel limit', async () => {
    assert.equal((await postCold(Buffer.alloc(0))).body.code, 'IMAGE_EMPTY');
    assert.equal((await postCold(Buffer.from('GIF89a nonsense'))).body.code, 'IMAGE_INVALID');
    const big = await sharp({ create: { width: 1600, height: 1200, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    assert.equal((await postCold(big.subarray(0, Math.floor(big.length / 2)))).status, 422);
    const huge = await sharp({ create: { width: 4000, height: 1100, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    const r = await postCold(huge);
    assert.equal(r.status, 413);
    assert.equal(r.body.code, 'IMAGE_TOO_LARGE');
  });

  test('unknown model without modelUrl is 404; unreachable and slow modelUrls are 502 / 504', async () => {
    assert.equal((await post('never-loaded', smallJpeg)).body.code, 'MODEL_NOT_FOUND');
    const refused = await put('refused', 'http://127.0.0.1:9/x.mpta');
    assert.equal(refused.status, 502);
    assert.equal(refused.body.code, 'MODEL_DOWNLOAD_FAILED');
    // A server that sends headers and then stalls the body.
    const slow: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': '1000' });
      res.write('PK\x03\x04');
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const port = (slow.address() as { port: number }).port;
      const r = await put('slow', `http://127.0.0.1:${port}/slow.mpta`);
      assert.equal(r.status, 504, JSON.stringify(r.body));
      assert.equal(r.body.code, 'MODEL_DOWNLOAD_TIMEOUT');
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
    assert.equal((await postCold(smallJpeg)).status, 200);
  });
});

describe('real models from ../shared/fixtures', () => {
  test('two-level pipeline (detector -> car crop -> colour classifier) over HTTP on real photos', async (t) => {
    const archive = await writeStandardMpta(t, work, 'standard.mpta');
    if (!archive) return;
    const photo = fixture(t, 'images/parking_plate_1080p.jpg');
    const road = fixture(t, 'images/traffic_road_1024x576.jpg');
    if (!photo || !road) return;
    const r = await post('cars', await readFile(photo), `?modelUrl=${encodeURIComponent(url(archive))}&subscriptionIdentifier=display-1;cam-1`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const result = r.body.result;
    // PROVENANCE: car 0.92 [585,331,1904,985]; truck 0.61 [138,269,447,492]; car 0.58 [311,340,706,584].
    assert.equal(result.class, 'car');
    assert.ok(Math.abs(result.confidence - 0.92) < 0.05);
    result.bbox.forEach((v: number, i: number) => assert.ok(Math.abs(v - [585, 331, 1904, 985][i]!) <= 15, `bbox ${result.bbox}`));
    assert.ok(result.detections.some((d: any) => d.class === 'truck'));
    assert.ok(!result.detections.some((d: any) => d.class === 'motorcycle'), 'only trigger classes are kept');
    const colour = result.branch_results.car_color_cls_v1;
    assert.ok(colour && typeof colour.class === 'string' && colour.color === colour.class, JSON.stringify(result.branch_results));
    assert.equal(r.body.detection.carColor, colour.class);
    assert.ok(r.body.timings.nodes.vehicle_det_v1.inference > 0);
    assert.ok(r.body.timings.nodes.car_color_cls_v1.inference >= 0);

    const road1 = await post('cars', await readFile(road));
    const counts: Record<string, number> = {};
    for (const d of road1.body.result.detections) counts[d.class] = (counts[d.class] ?? 0) + 1;
    // PROVENANCE: 17 boxes: 15 car, 1 bus, 1 truck.
    assert.ok(counts.car! >= 13 && counts.car! <= 17, JSON.stringify(counts));
    assert.equal(counts.bus, 1);
    assert.equal(counts.truck, 1);
  });

  test('a 320-input YOLO11 detector and the plate detector with landmark outputs', async (t) => {
    const yolo11 = fixture(t, 'models/yolo11n_int8_320.onnx');
    const plateDet = fixture(t, 'models/plate_det_y5fu_320.onnx');
    const plateColor = fixture(t, 'models/plate_color_cls_96.onnx');
    const photo = fixture(t, 'images/parking_plate_1080p.jpg');
    if (!yolo11 || !plateDet || !plateColor || !photo) return;
    const archive = await writeMpta(work, 'plates.mpta', {
      folder: 'plates',
      pipeline: {
        pipeline: {
          modelId: 'vehicles',
          modelFile: 'yolo11n_int8_320.onnx',
          minConfidence: 0.3,
          triggerClasses: ['car'],
          branches: [
            {
              modelId: 'plate_det',
              modelFile: 'plate_det_y5fu_320.onnx',
              classNames: ['single', 'double'],
              preprocess: { padValue: 0 },
              iouThreshold: 0.5,
              minConfidence: 0.3,
              triggerClasses: ['car'],
              crop: true,
              branches: [
                {
                  modelId: 'plate_color',
                  modelFile: 'plate_color_cls_96.onnx',
                  labelsFile: 'labels.txt',
                  preprocess: { channelOrder: 'bgr' },
                  outputField: 'plate_color',
                  minConfidence: 0.25,
                  triggerClasses: ['single', 'double'],
                  crop: true,
                },
              ],
            },
          ],
        },
        cmsDetection: { licensePlateType: '{plate_det.class}', licensePlateConfidence: '{plate_det.confidence}' },
      },
      files: {
        'yolo11n_int8_320.onnx': await readFile(yolo11),
        'plate_det_y5fu_320.onnx': await readFile(plateDet),
        'plate_color_cls_96.onnx': await readFile(plateColor),
        'labels.txt': 'blue\ngreen\nyellow\n',
      },
    });
    const r = await post('plates', await readFile(photo), `?modelUrl=${encodeURIComponent(url(archive))}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const plate = r.body.result.branch_results.plate_det;
    assert.ok(plate, JSON.stringify(r.body.result));
    assert.equal(plate.class, 'single');
    assert.equal(plate.keypoints?.length ?? plate.detections[0].keypoints.length, 4);
    assert.equal(plate.branch_results.plate_color.plate_color, 'green');
    assert.equal(r.body.detection.licensePlateType, 'single');
    assert.equal(typeof r.body.detection.licensePlateConfidence, 'number');
  });
});

describe('stages: the cheap per-frame detect stage and a focused full run', () => {
  test('stage=detect runs the detector only; focus picks one car for the branches', async (t) => {
    const archive = await writeStandardMpta(t, work, 'stages.mpta');
    const photo = fixture(t, 'images/parking_plate_1080p.jpg');
    if (!archive || !photo) return;
    const jpeg = await readFile(photo);
    const load = `?modelUrl=${encodeURIComponent(url(archive))}`;

    const detect = await post('stages', jpeg, `${load}&stage=detect`);
    assert.equal(detect.status, 200, JSON.stringify(detect.body));
    assert.equal(detect.body.detection, null, 'no CMS detection from the detect stage');
    assert.deepEqual(detect.body.result.branch_results, {});
    assert.deepEqual(Object.keys(detect.body.timings.nodes), ['vehicle_det_v1'], 'the colour branch did not run');
    // PROVENANCE: car 0.92 [585,331,1904,985]; truck 0.61 [138,269,447,492]; car 0.58 [311,340,706,584].
    const small = detect.body.result.detections.find((d: any) => d.class === 'car' && d.bbox[0] < 500);
    assert.ok(small, JSON.stringify(detect.body.result.detections));

    // A full run focused on the smaller car: it is the primary, and the colour branch crops it.
    const focused = await post('stages', jpeg, `?stage=full&focus=${small.bbox.join(',')}`, { 'x-request-id': 'visit-7' });
    assert.equal(focused.status, 200, JSON.stringify(focused.body));
    // The detect stage decodes at a reduced scale, the full run fully: a few pixels apart.
    focused.body.result.bbox.forEach((v: number, i: number) => assert.ok(Math.abs(v - small.bbox[i]) <= 10, `${focused.body.result.bbox} vs ${small.bbox}`));
    assert.ok(focused.body.result.branch_results.car_color_cls_v1);
    assert.ok(!focused.body.result.detections.some((d: any) => d.bbox[0] > 500), 'the big car is left out');
    assert.equal(focused.body.detection.class, 'car');

    // The same over headers, and bad values answer 400.
    const viaHeader = await post('stages', jpeg, '', { 'x-stage': 'detect' });
    assert.equal(viaHeader.body.detection, null);
    for (const q of ['?stage=everything', '?focus=1,2,3', '?focus=10,10,5,5', '?focus=a,b,c,d']) {
      const bad = await post('stages', jpeg, q);
      assert.equal(bad.status, 400, q);
      assert.equal(bad.body.code, 'BAD_REQUEST');
    }
  });
});
