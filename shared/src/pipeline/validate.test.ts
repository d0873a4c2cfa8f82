import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { listNodes, pointerToPath, validatePipelineFile, type PipelineProblem } from './validate.js';

/** The "Complete Example pipeline.json" of spec/mpta-pipeline-format.md, with .onnx models. */
function specExample(): any {
  return {
    redis: { host: 'db.example.internal', port: 6379, password: 'your-redis-password', db: 0 },
    postgresql: { host: 'db.example.internal', port: 5432, database: 'inference', username: 'root', password: 'your-db-password' },
    pipeline: {
      modelId: 'car_frontal_detection_v1',
      modelFile: 'car_frontal_detection_v1.onnx',
      crop: false,
      triggerClasses: ['Car', 'Frontal'],
      minConfidence: 0.8,
      multiClass: true,
      expectedClasses: ['Car', 'Frontal'],
      actions: [
        {
          type: 'redis_save_image',
          region: 'Frontal',
          key: 'inference:{display_id}:{timestamp}:{session_id}:{filename}',
          expire_seconds: 600,
          format: 'jpeg',
          quality: 90,
        },
        { type: 'redis_publish', channel: 'car_detections', message: '{"event":"frontal_detected"}' },
      ],
      branches: [
        {
          modelId: 'car_brand_cls_v1',
          modelFile: 'car_brand_cls_v1.onnx',
          crop: true,
          cropClass: 'Frontal',
          resizeTarget: [224, 224],
          triggerClasses: ['Frontal'],
          minConfidence: 0.85,
          parallel: true,
          branches: [],
        },
        {
          modelId: 'car_bodytype_cls_v1',
          modelFile: 'car_bodytype_cls_v1.onnx',
          crop: true,
          cropClass: 'Car',
          resizeTarget: [224, 224],
          triggerClasses: ['Car'],
          minConfidence: 0.85,
          parallel: true,
          branches: [],
        },
      ],
      parallelActions: [
        {
          type: 'postgresql_update_combined',
          table: 'car_frontal_info',
          key_field: 'session_id',
          key_value: '{session_id}',
          waitForBranches: ['car_brand_cls_v1', 'car_bodytype_cls_v1'],
          fields: { car_brand: '{car_brand_cls_v1.brand}', car_body_type: '{car_bodytype_cls_v1.body_type}' },
        },
      ],
    },
  };
}

function problemsOf(input: unknown): PipelineProblem[] {
  const result = validatePipelineFile(input);
  assert.equal(result.ok, false, 'expected validation to fail');
  return result.ok ? [] : result.problems;
}

function hasProblem(problems: PipelineProblem[], path: string, message?: RegExp): void {
  const found = problems.find((p) => p.path === path && (!message || message.test(p.message)));
  assert.ok(found, `no problem at ${path}${message ? ` matching ${message}` : ''}; got ${JSON.stringify(problems)}`);
}

describe('validatePipelineFile', () => {
  test("accepts the spec's complete example", () => {
    const result = validatePipelineFile(specExample());
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.equal(result.value.pipeline.branches?.length, 2);
  });

  test('accepts a minimal pipeline and the ONNX extensions', () => {
    const minimal = { pipeline: { modelId: 'a', modelFile: 'a.onnx', minConfidence: 0, triggerClasses: ['x'] } };
    assert.ok(validatePipelineFile(minimal).ok);
    const extended = {
      pipeline: {
        ...minimal.pipeline,
        task: 'detect',
        outputFormat: 'yolov8',
        classNames: ['x', 'y'],
        iouThreshold: 0.5,
        preprocess: { resize: 'letterbox', padValue: 114, channelOrder: 'rgb', mean: [0, 0, 0], std: [1, 1, 1] },
        outputField: 'color',
      },
      cmsDetection: { carBrand: '{car_brand_cls_v1.brand}' },
      initialRecord: { enabled: true, table: 'car_frontal_info', triggerClasses: ['Car'] },
    };
    const result = validatePipelineFile(extended);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  });

  test('refuses unknown keys with their path', () => {
    const input = specExample();
    input.pipeline.branches[1].minConfidance = 0.5;
    input.extra = true;
    input.redis.user = 'x';
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.branches[1].minConfidance', /not a known key/);
    hasProblem(problems, '$.extra', /not a known key/);
    hasProblem(problems, '$.redis.user', /not a known key/);
  });

  test('an unknown key that is not an identifier gets bracket notation', () => {
    const input = specExample();
    input.pipeline['model-file'] = 'x';
    hasProblem(problemsOf(input), '$.pipeline["model-file"]', /not a known key/);
  });

  test('reports wrong types and ranges with their paths', () => {
    const input = specExample();
    input.pipeline.minConfidence = '0.8';
    input.pipeline.branches[0].minConfidence = 1.5;
    input.pipeline.branches[0].resizeTarget = [224];
    input.pipeline.triggerClasses = [];
    input.redis.port = 70000;
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.minConfidence', /number/);
    hasProblem(problems, '$.pipeline.branches[0].minConfidence', /<= 1/);
    hasProblem(problems, '$.pipeline.branches[0].resizeTarget');
    hasProblem(problems, '$.pipeline.triggerClasses');
    hasProblem(problems, '$.redis.port');
  });

  test('reports missing required keys at the missing key', () => {
    const input = specExample();
    delete input.pipeline.branches[0].modelFile;
    delete input.postgresql.password;
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.branches[0].modelFile', /required/);
    hasProblem(problems, '$.postgresql.password', /required/);
  });

  test('names the valid action types for an unknown one', () => {
    const input = specExample();
    input.pipeline.actions[1].type = 'redis_pub';
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.actions[1].type', /redis_save_image, redis_publish, postgresql_update_combined/);
  });

  test('reports an error inside a known action type without union noise', () => {
    const input = specExample();
    input.pipeline.actions[0].quality = 101;
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.actions[0].quality');
    assert.ok(!problems.some((p) => p.path === '$.pipeline.actions[0].type'), JSON.stringify(problems));
  });

  test('an action missing a key of its own type gets only that problem', () => {
    const input = specExample();
    delete input.pipeline.actions[1].message;
    input.pipeline.parallelActions[0].fields.car_brand = 5;
    assert.deepEqual(problemsOf(input), [
      { path: '$.pipeline.actions[1].message', message: 'is required' },
      { path: '$.pipeline.parallelActions[0].fields.car_brand', message: 'must be string' },
    ]);
  });

  test('an action without a type says which types exist', () => {
    const input = specExample();
    delete input.pipeline.actions[1].type;
    assert.deepEqual(problemsOf(input), [
      { path: '$.pipeline.actions[1].type', message: 'is required (one of redis_save_image, redis_publish, postgresql_update_combined)' },
    ]);
  });

  test('literal unions list their values', () => {
    const input = specExample();
    input.pipeline.actions[0].format = 'gif';
    input.pipeline.branches[0].preprocess = { resize: 5 };
    const byPath = (a: PipelineProblem, b: PipelineProblem) => a.path.localeCompare(b.path);
    assert.deepEqual(problemsOf(input).sort(byPath), [
      { path: '$.pipeline.actions[0].format', message: 'must be one of jpeg, png' },
      { path: '$.pipeline.branches[0].preprocess.resize', message: 'must be one of letterbox, stretch, center-crop' },
    ]);
  });

  test('refuses a root that is not an object', () => {
    hasProblem(problemsOf(null), '$');
    hasProblem(problemsOf([]), '$');
    hasProblem(problemsOf({}), '$.pipeline', /required/);
  });

  test('waitForBranches must name child branches of the node', () => {
    const input = specExample();
    input.pipeline.parallelActions[0].waitForBranches = ['car_brand_cls_v1', 'car_plate_v1'];
    const problems = problemsOf(input);
    assert.deepEqual(problems, [{ path: '$.pipeline.parallelActions[0].waitForBranches[1]', message: 'names no branch of this node ("car_plate_v1")' }]);
  });

  test('waitForBranches may not name the node itself or a grandchild', () => {
    const input = specExample();
    input.pipeline.branches[0].branches = [{ modelId: 'grandchild', modelFile: 'g.onnx', minConfidence: 0.5, triggerClasses: ['x'] }];
    input.pipeline.parallelActions[0].waitForBranches = ['car_frontal_detection_v1', 'grandchild'];
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.parallelActions[0].waitForBranches[0]');
    hasProblem(problems, '$.pipeline.parallelActions[0].waitForBranches[1]');
  });

  test('modelIds must be unique across the tree', () => {
    const input = specExample();
    input.pipeline.branches[1].modelId = 'car_brand_cls_v1';
    input.pipeline.parallelActions[0].waitForBranches = ['car_brand_cls_v1'];
    const problems = problemsOf(input);
    hasProblem(problems, '$.pipeline.branches[1].modelId', /duplicates the modelId at \$\.pipeline\.branches\[0\]\.modelId/);
  });

  test('modelIds must be usable as template prefixes', () => {
    const input = specExample();
    input.pipeline.branches[0].modelId = 'car brand';
    input.pipeline.parallelActions[0].waitForBranches = ['car_bodytype_cls_v1'];
    hasProblem(problemsOf(input), '$.pipeline.branches[0].modelId', /pattern/);
  });
});

describe('helpers', () => {
  test('pointerToPath turns JSON pointers into JSON paths', () => {
    assert.equal(pointerToPath(''), '$');
    assert.equal(pointerToPath('/pipeline/branches/0/minConfidence'), '$.pipeline.branches[0].minConfidence');
    assert.equal(pointerToPath('/cmsDetection/a~1b'), '$.cmsDetection["a/b"]');
    assert.equal(pointerToPath('/x/with space'), '$.x["with space"]');
  });

  test('listNodes walks depth-first with paths', () => {
    const input = specExample();
    input.pipeline.branches[0].branches = [{ modelId: 'deep', modelFile: 'd.onnx', minConfidence: 0.5, triggerClasses: ['x'] }];
    assert.deepEqual(
      listNodes(input.pipeline).map((n) => [n.node.modelId, n.path, n.depth]),
      [
        ['car_frontal_detection_v1', '$.pipeline', 0],
        ['car_brand_cls_v1', '$.pipeline.branches[0]', 1],
        ['deep', '$.pipeline.branches[0].branches[0]', 2],
        ['car_bodytype_cls_v1', '$.pipeline.branches[1]', 1],
      ],
    );
  });
});

describe('tracking (root extension)', () => {
  test('valid settings pass; branches may not track; bad values and mixed zones are named', () => {
    const ok = specExample();
    ok.pipeline.tracking = { enabled: true, lostTimeoutSec: 20, zone: [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], maxRuns: 2 };
    assert.equal(validatePipelineFile(ok).ok, true);

    const branch = specExample();
    branch.pipeline.branches[0].tracking = { enabled: true };
    hasProblem(problemsOf(branch), '$.pipeline.branches[0].tracking', /root/);

    const bad = specExample();
    bad.pipeline.tracking = { maxRuns: 0, zone: [[0, 0], [1, 1]], highScore: 0.3, lowScore: 0.5, colour: 'x' };
    const problems = problemsOf(bad);
    assert.ok(problems.some((p) => p.path.startsWith('$.pipeline.tracking')), JSON.stringify(problems));

    const inverted = specExample();
    inverted.pipeline.tracking = { highScore: 0.3, lowScore: 0.5 };
    hasProblem(problemsOf(inverted), '$.pipeline.tracking.lowScore');

    const mixed = specExample();
    mixed.pipeline.tracking = { zone: [[0.5, 0.5], [640, 10], [640, 360]] };
    hasProblem(problemsOf(mixed), '$.pipeline.tracking.zone', /mixes/);
  });
});

test('OCR nodes: ocr keys validated, no branches, format must compile, ocr only on OCR nodes', () => {
  const ocrNode = { modelId: 'plate_ocr', modelFile: 'ocr.onnx', minConfidence: 0.3, triggerClasses: ['plate'], task: 'ocr', ocr: { config: 'ocr.yaml', format: '^[A-Z0-9]{4,8}$', minLength: 4 } };
  assert.equal(validatePipelineFile({ pipeline: ocrNode }).ok, true);
  const problems = (file: unknown) => {
    const r = validatePipelineFile(file);
    return r.ok ? [] : r.problems.map((p) => `${p.path} ${p.message}`);
  };
  assert.match(problems({ pipeline: { ...ocrNode, branches: [{ ...ocrNode, modelId: 'x' }] } }).join(), /\$\.pipeline\.branches .*no branches|cannot have branches/);
  assert.match(problems({ pipeline: { ...ocrNode, ocr: { format: '([' } } }).join(), /\$\.pipeline\.ocr\.format is not a valid regular expression/);
  assert.match(problems({ pipeline: { ...ocrNode, ocr: { padChar: '__' } } }).join(), /\$\.pipeline\.ocr\.padChar/);
  assert.match(problems({ pipeline: { ...ocrNode, ocr: { alphabet: 'AB', padChar: '_' } } }).join(), /padChar must be one of the alphabet/);
  assert.match(problems({ pipeline: { ...ocrNode, ocr: { dictionary: 'd.txt', config: 'c.yaml' } } }).join(), /dictionary/);
  assert.match(problems({ pipeline: { ...ocrNode, task: 'classify' } }).join(), /\$\.pipeline\.ocr belongs to a node with task "ocr"/);
  assert.match(problems({ pipeline: { ...ocrNode, ocr: { bogus: 1 } } }).join(), /\$\.pipeline\.ocr\.bogus is not a known key/);
});
