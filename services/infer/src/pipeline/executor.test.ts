import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Action, PipelineNode } from '@detector-worker/shared/pipeline/schema';
import type { Box } from '../inference/types.js';
import { PipelineExecutor } from './executor.js';
import type { PreparedNode } from './node.js';
import type { ActionRunner, CropOptions, NodeRunner, PipelineImage } from './ports.js';
import type { TextRead } from '../inference/types.js';
import type { ActionEvent, ActionOutcome, ClassificationResult, Detection, DetectionNodeResult, OcrResult } from './types.js';

/** An image that only records the crops taken from it. */
class FakeImage implements PipelineImage {
  constructor(
    readonly width: number,
    readonly height: number,
    readonly name = 'frame',
  ) {}
  async crop(box: Box, options: CropOptions = {}): Promise<PipelineImage> {
    const extra = [options.margin !== undefined ? `margin ${options.margin}` : '', options.corners ? `corners ${JSON.stringify(options.corners)}` : ''].filter(Boolean);
    return new FakeImage(box[2] - box[0], box[3] - box[1], `${this.name}>crop(${box.join(',')}${extra.length ? `; ${extra.join('; ')}` : ''})`);
  }
  async encode(): Promise<Buffer> {
    return Buffer.alloc(0);
  }
}

function prepared(spec: PipelineNode, task: 'detect' | 'classify' | 'ocr', branches: PreparedNode[] = []): PreparedNode {
  return {
    spec: { ...spec, branches: branches.map((b) => b.spec) },
    path: '$',
    task,
    classNames: [],
    classFilter: null,
    branches,
    modelBytes: 1,
    decodeFullFrame: false,
    model: undefined,
  };
}

/** Scripted model answers per node id; records what each node saw. */
class FakeRunner implements NodeRunner {
  seen: Array<{ node: string; image: string }> = [];
  active = 0;
  maxActive = 0;
  constructor(private readonly answers: Record<string, Detection[] | { className: string; confidence: number } | TextRead | Error>) {}
  private async enter(node: string, image: PipelineImage): Promise<void> {
    this.seen.push({ node, image: (image as FakeImage).name });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    await new Promise((r) => setTimeout(r, 5));
    this.active--;
  }
  wholeFrame: boolean[] = [];
  async detect(node: PreparedNode, image: PipelineImage, minConfidence: number, wholeFrameLater?: boolean) {
    this.wholeFrame.push(wholeFrameLater === true);
    await this.enter(node.spec.modelId, image);
    const a = this.answers[node.spec.modelId];
    if (a instanceof Error) throw a;
    const detections = (a as Detection[]).filter((d) => d.confidence >= minConfidence);
    return { detections, timings: { preprocess: 1, inference: 2 } };
  }
  async classify(node: PreparedNode, image: PipelineImage) {
    await this.enter(node.spec.modelId, image);
    const a = this.answers[node.spec.modelId];
    if (a instanceof Error) throw a;
    return { ...(a as { className: string; confidence: number }), timings: { preprocess: 1, inference: 1 } };
  }
  async read(node: PreparedNode, image: PipelineImage) {
    await this.enter(node.spec.modelId, image);
    const a = this.answers[node.spec.modelId];
    if (a instanceof Error) throw a;
    return { read: a as TextRead, timings: { preprocess: 1, inference: 1 } };
  }
}

class RecordingActions implements ActionRunner {
  calls: Array<{ node: string; types: string[]; branches: string[]; context: Record<string, unknown> }> = [];
  attach(): void {}
  async detach(): Promise<void> {}
  async initialRecord(event: ActionEvent): Promise<ActionOutcome | null> {
    event.context.session_id = 'session-1';
    return { node: event.node.modelId, type: 'initial_record', status: 'ok' };
  }
  async run(actions: readonly Action[], event: ActionEvent): Promise<ActionOutcome[]> {
    this.calls.push({ node: event.node.modelId, types: actions.map((a) => a.type), branches: Object.keys(event.branchResults), context: { ...event.context } });
    return actions.map((a) => ({ node: event.node.modelId, type: a.type, status: 'ok' as const }));
  }
  async close(): Promise<void> {}
}

const d = (cls: string, confidence: number, bbox: Box = [10, 10, 50, 50]): Detection => ({ class: cls, confidence, bbox, id: null });
const logger = pino({ level: 'silent' });

function carPipeline(over: Partial<PipelineNode> = {}) {
  const brand = prepared({ modelId: 'car_brand_cls_v1', modelFile: 'b.onnx', minConfidence: 0.85, triggerClasses: ['Frontal'], crop: true, cropClass: 'Frontal', parallel: true }, 'classify');
  const body = prepared({ modelId: 'car_bodytype_cls_v1', modelFile: 'c.onnx', minConfidence: 0.85, triggerClasses: ['Car'], crop: true, parallel: true }, 'classify');
  const root = prepared(
    {
      modelId: 'car_frontal_detection_v1',
      modelFile: 'd.onnx',
      minConfidence: 0.5,
      triggerClasses: ['Car', 'Frontal'],
      multiClass: true,
      expectedClasses: ['Car', 'Frontal'],
      actions: [{ type: 'redis_publish', channel: 'c', message: '{"a":1}' }],
      parallelActions: [{ type: 'postgresql_update_combined', table: 'car_frontal_info', key_field: 'session_id', key_value: '{session_id}', waitForBranches: ['car_brand_cls_v1', 'car_bodytype_cls_v1'], fields: { car_brand: '{car_brand_cls_v1.brand}' } }],
      ...over,
    },
    'detect',
    [brand, body],
  );
  return root;
}

test('two-level pipeline: crops go to the right branches, which run concurrently, then parallelActions see both results', async () => {
  const runner = new FakeRunner({
    car_frontal_detection_v1: [d('Car', 0.95, [0, 0, 100, 80]), d('Frontal', 0.9, [20, 30, 60, 70]), d('Car', 0.7, [200, 0, 260, 40])],
    car_brand_cls_v1: { className: 'Honda', confidence: 0.9 },
    car_bodytype_cls_v1: { className: 'Sedan', confidence: 0.8 },
  });
  const actions = new RecordingActions();
  const exec = new PipelineExecutor({ runner, actions, logger });
  const run = await exec.run('p@1', carPipeline(), new FakeImage(640, 480), { subscriptionIdentifier: 'display-1;cam-1', requestId: 'r1' });
  const result = run.result as DetectionNodeResult;
  assert.equal(result.class, 'Car');
  assert.equal(result.confidence, 0.95);
  assert.equal(result.detections.length, 3);
  assert.equal(result.session_id, 'session-1');
  assert.equal((result.branch_results.car_brand_cls_v1 as ClassificationResult).brand, 'Honda');
  assert.equal((result.branch_results.car_bodytype_cls_v1 as ClassificationResult).body_type, 'Sedan');
  assert.deepEqual(
    runner.seen.filter((s) => s.node !== 'car_frontal_detection_v1').sort((a, b) => a.node.localeCompare(b.node)),
    [
      { node: 'car_bodytype_cls_v1', image: 'frame>crop(0,0,100,80)' },
      { node: 'car_brand_cls_v1', image: 'frame>crop(20,30,60,70)' },
    ],
  );
  assert.equal(runner.maxActive, 2, 'parallel branches overlap');
  assert.deepEqual(
    actions.calls.map((c) => [c.node, c.types, c.branches.sort()]),
    [
      ['car_frontal_detection_v1', ['redis_publish'], []],
      ['car_frontal_detection_v1', ['postgresql_update_combined'], ['car_bodytype_cls_v1', 'car_brand_cls_v1']],
    ],
  );
  assert.equal(actions.calls[0]!.context.camera_id, 'display-1;cam-1');
  assert.deepEqual(
    run.actions.map((a) => a.type),
    ['initial_record', 'redis_publish', 'postgresql_update_combined'],
  );
  assert.deepEqual(Object.keys(run.nodes).sort(), ['car_bodytype_cls_v1', 'car_brand_cls_v1', 'car_frontal_detection_v1']);
});

test('nothing detected: no result, no actions, no branches', async () => {
  const runner = new FakeRunner({ car_frontal_detection_v1: [d('Car', 0.3)] });
  const actions = new RecordingActions();
  const run = await new PipelineExecutor({ runner, actions, logger }).run('p', carPipeline(), new FakeImage(10, 10), {});
  assert.equal(run.result, null);
  assert.match(run.reason!, /no Car\/Frontal/);
  assert.equal(actions.calls.length, 0);
  assert.equal(runner.seen.length, 1);
});

test('pre-validation aborts before any action when an awaited branch would not run', async () => {
  // Frontal at 0.6 < brand branch minConfidence 0.85.
  const runner = new FakeRunner({ car_frontal_detection_v1: [d('Car', 0.95), d('Frontal', 0.6)] });
  const actions = new RecordingActions();
  const run = await new PipelineExecutor({ runner, actions, logger }).run('p', carPipeline(), new FakeImage(10, 10), {});
  assert.equal(run.result, null);
  assert.match(run.reason!, /car_brand_cls_v1/);
  assert.equal(actions.calls.length, 0);
  assert.equal(run.actions.length, 0);
});

test('multiClass with no expected class present returns nothing', async () => {
  const runner = new FakeRunner({ car_frontal_detection_v1: [d('Plate', 0.95)] });
  const root = carPipeline({ triggerClasses: ['Car', 'Frontal', 'Plate'], parallelActions: [] });
  const run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', root, new FakeImage(10, 10), {});
  assert.equal(run.result, null);
});

test('a failing branch is left out and does not fail its sibling or parent', async () => {
  const runner = new FakeRunner({
    car_frontal_detection_v1: [d('Car', 0.95), d('Frontal', 0.9)],
    car_brand_cls_v1: new Error('model exploded'),
    car_bodytype_cls_v1: { className: 'SUV', confidence: 0.9 },
  });
  const run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', carPipeline({ parallelActions: [] }), new FakeImage(10, 10), {});
  const result = run.result as DetectionNodeResult;
  assert.deepEqual(Object.keys(result.branch_results), ['car_bodytype_cls_v1']);
});

test('sequential branches without parallel; recursive detector branch gets its own crop-relative input', async () => {
  const plateColor = prepared({ modelId: 'plate_color', modelFile: 'pc.onnx', minConfidence: 0.3, triggerClasses: ['plate'], crop: true }, 'classify');
  const plate = prepared({ modelId: 'plate_det', modelFile: 'p.onnx', minConfidence: 0.3, triggerClasses: ['car'], crop: true }, 'detect', [plateColor]);
  const root = prepared({ modelId: 'vehicles', modelFile: 'v.onnx', minConfidence: 0.25, triggerClasses: ['car'] }, 'detect', [plate]);
  const runner = new FakeRunner({
    vehicles: [d('car', 0.9, [100, 100, 300, 200])],
    plate_det: [d('plate', 0.8, [50, 60, 90, 75])],
    plate_color: { className: 'green', confidence: 0.99 },
  });
  const run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', root, new FakeImage(640, 480), {});
  const result = run.result as DetectionNodeResult;
  const plateResult = result.branch_results.plate_det as DetectionNodeResult;
  assert.equal(plateResult.class, 'plate');
  assert.equal(plateResult.branch_results.plate_color!.class, 'green');
  assert.deepEqual(runner.seen.map((s) => s.image), ['frame', 'frame>crop(100,100,300,200)', 'frame>crop(100,100,300,200)>crop(50,60,90,75)']);
  assert.equal(runner.maxActive, 1);
});

test('stage detect: the root detector only, no initial record, actions or branches', async () => {
  const runner = new FakeRunner({
    car_frontal_detection_v1: [d('Car', 0.95, [0, 0, 100, 80]), d('Frontal', 0.9, [20, 30, 60, 70])],
    car_brand_cls_v1: { className: 'Honda', confidence: 0.9 },
    car_bodytype_cls_v1: { className: 'Sedan', confidence: 0.8 },
  });
  const actions = new RecordingActions();
  const exec = new PipelineExecutor({ runner, actions, logger });
  const run = await exec.run('p@1', { ...carPipeline(), decodeFullFrame: true }, new FakeImage(640, 480), { requestId: 'r1' }, { stage: 'detect' });
  assert.deepEqual(runner.wholeFrame, [false], 'nothing will be cropped: no full decode for the detect stage');
  const result = run.result as DetectionNodeResult;
  assert.equal(result.detections.length, 2);
  assert.deepEqual(result.branch_results, {});
  assert.equal(result.session_id, null);
  assert.deepEqual(run.actions, []);
  assert.equal(actions.calls.length, 0);
  assert.deepEqual(runner.seen.map((s) => s.node), ['car_frontal_detection_v1']);
});

test('focus: the tracked car is the primary, its inside regions stay, the car at the next pump is left out', async () => {
  const runner = new FakeRunner({
    // The other car scores higher; the focus names the first one.
    car_frontal_detection_v1: [d('Car', 0.88, [0, 0, 100, 80]), d('Frontal', 0.9, [20, 30, 60, 70]), d('Car', 0.97, [300, 0, 420, 90])],
    car_brand_cls_v1: { className: 'Honda', confidence: 0.9 },
    car_bodytype_cls_v1: { className: 'Sedan', confidence: 0.8 },
  });
  const exec = new PipelineExecutor({ runner, actions: new RecordingActions(), logger });
  const run = await exec.run('p@1', carPipeline(), new FakeImage(640, 480), { requestId: 'visit-1' }, { focus: [2, 0, 98, 82] });
  const result = run.result as DetectionNodeResult;
  assert.deepEqual(result.bbox, [0, 0, 100, 80]);
  assert.equal(result.confidence, 0.88);
  assert.deepEqual(result.detections.map((x) => x.class), ['Car', 'Frontal']);
  assert.deepEqual(Object.keys(result.branch_results).sort(), ['car_bodytype_cls_v1', 'car_brand_cls_v1']);
  assert.ok(runner.seen.some((s) => s.image.includes('crop(0,0,100,80)')), 'the body-type branch crops the focused car');

  const missed = await exec.run('p@1', carPipeline(), new FakeImage(640, 480), {}, { focus: [500, 300, 600, 400] });
  assert.equal(missed.result, null);
  assert.match(missed.reason ?? '', /focus/);
});

function plateTree(ocr: PipelineNode['ocr'] = {}): PreparedNode {
  const reader = prepared({ modelId: 'plate_ocr', modelFile: 'ocr.onnx', minConfidence: 0.3, triggerClasses: ['single', 'double'], crop: true, task: 'ocr', ocr }, 'ocr');
  return prepared({ modelId: 'plate_det', modelFile: 'det.onnx', minConfidence: 0.3, triggerClasses: ['single', 'double'] }, 'detect', [reader]);
}
const chars = (text: string, confidence = 0.99): TextRead => ({ text, characters: [...text].map((char) => ({ char, confidence })) });

test('OCR branch: the best plate of any trigger class is cropped with a margin and its corners, and read', async () => {
  const corners: Array<[number, number]> = [
    [10, 20],
    [90, 22],
    [88, 40],
    [11, 38],
  ];
  const runner = new FakeRunner({ plate_det: [{ ...d('double', 0.8, [10, 20, 90, 40]), keypoints: corners }], plate_ocr: chars('DR68651') });
  const run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', plateTree(), new FakeImage(200, 100), {});
  const read = (run.result as DetectionNodeResult).branch_results.plate_ocr as OcrResult;
  assert.deepEqual([read.text, read.class, read.confidence, read.characters.length], ['DR68651', 'DR68651', 0.99, 7]);
  assert.equal(runner.seen[1]!.image, `frame>crop(10,20,90,40; margin 0.05; corners ${JSON.stringify(corners)})`);
});

test('OCR branch: rectify off, a low-confidence read and a format miss are no reads with a reason', async () => {
  const weak = { text: 'AB12', characters: [...'AB12'].map((char, i) => ({ char, confidence: i === 2 ? 0.2 : 0.9 })) };
  let runner = new FakeRunner({ plate_det: [{ ...d('single', 0.8, [10, 20, 90, 40]), keypoints: [[10, 20], [90, 20], [90, 40], [10, 40]] }], plate_ocr: weak });
  let run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', plateTree({ rectify: false }), new FakeImage(200, 100), {});
  let read = (run.result as DetectionNodeResult).branch_results.plate_ocr as OcrResult;
  assert.equal(read.text, null);
  assert.equal(read.confidence, 0.2);
  assert.match(read.reason!, /below 0.5/);
  assert.equal(runner.seen[1]!.image, 'frame>crop(10,20,90,40; margin 0.05)');

  runner = new FakeRunner({ plate_det: [d('single', 0.8, [10, 20, 90, 40])], plate_ocr: chars('ab-1') });
  run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', plateTree({ format: '^[A-Z0-9]{4,8}$' }), new FakeImage(200, 100), {});
  read = (run.result as DetectionNodeResult).branch_results.plate_ocr as OcrResult;
  assert.match(read.reason!, /does not match/);

  runner = new FakeRunner({ plate_det: [d('single', 0.8, [10, 20, 90, 40])], plate_ocr: chars('AB1') });
  run = await new PipelineExecutor({ runner, actions: new RecordingActions(), logger }).run('p', plateTree({ minLength: 5 }), new FakeImage(200, 100), {});
  assert.match(((run.result as DetectionNodeResult).branch_results.plate_ocr as OcrResult).reason!, /fewer than 5/);
});
