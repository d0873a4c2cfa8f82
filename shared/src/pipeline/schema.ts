/**
 * The `pipeline.json` contract of `.mpta` archives (see spec/mpta-pipeline-format.md), as
 * TypeBox schemas: one definition gives the TypeScript types, the JSON Schema that
 * validates archives, and the OpenAPI description. Unknown keys are refused so a typo in an
 * archive surfaces as a 422 with its JSON path instead of a silently ignored setting.
 *
 * Keys beyond the original format are marked "extension"; they exist because ONNX models
 * carry less metadata than Ultralytics `.pt` files did.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const strict = { additionalProperties: false } as const;

/** Node ids become template prefixes (`{car_brand_cls_v1.brand}`) and result keys. */
export const ModelIdString = Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$', description: 'Node id: letters, digits, _ and -' });

/** A template string; placeholders are `{name}` or `{branchModelId.field}`. */
const Template = Type.String({ maxLength: 4096 });

export const RedisConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 255 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
    db: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })),
  },
  strict,
);

export const PostgresConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 255 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    database: Type.String({ minLength: 1, maxLength: 63 }),
    username: Type.String({ minLength: 1, maxLength: 63 }),
    password: Type.String({ maxLength: 1024 }),
  },
  strict,
);

export const RedisSaveImageActionSchema = Type.Object(
  {
    type: Type.Literal('redis_save_image'),
    key: Template,
    region: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    format: Type.Optional(Type.Union([Type.Literal('jpeg'), Type.Literal('png')])),
    quality: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    expire_seconds: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  strict,
);

export const RedisPublishActionSchema = Type.Object(
  {
    type: Type.Literal('redis_publish'),
    channel: Template,
    message: Template,
  },
  strict,
);

export const PostgresUpdateCombinedActionSchema = Type.Object(
  {
    type: Type.Literal('postgresql_update_combined'),
    table: Type.String({ minLength: 1, maxLength: 127 }),
    key_field: Type.String({ minLength: 1, maxLength: 63 }),
    key_value: Template,
    waitForBranches: Type.Array(ModelIdString),
    fields: Type.Record(Type.String({ minLength: 1, maxLength: 63 }), Template),
  },
  strict,
);

export const ActionSchema = Type.Union([RedisSaveImageActionSchema, RedisPublishActionSchema, PostgresUpdateCombinedActionSchema]);

/** Extension: how to turn an image into the model's input tensor. Defaults follow the node's task. */
export const PreprocessSchema = Type.Object(
  {
    resize: Type.Optional(
      Type.Union([Type.Literal('letterbox'), Type.Literal('stretch'), Type.Literal('center-crop')], {
        description: 'letterbox (detectors), stretch (classifiers), center-crop (ImageNet-style: shorter side to 256/224 of the target, then crop)',
      }),
    ),
    padValue: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'letterbox padding grey level, default 114' })),
    channelOrder: Type.Optional(Type.Union([Type.Literal('rgb'), Type.Literal('bgr')])),
    mean: Type.Optional(Type.Tuple([Type.Number(), Type.Number(), Type.Number()], { description: 'per channel, applied after /255' })),
    std: Type.Optional(Type.Tuple([Type.Number({ exclusiveMinimum: 0 }), Type.Number({ exclusiveMinimum: 0 }), Type.Number({ exclusiveMinimum: 0 })])),
  },
  strict,
);

export interface PipelineNode {
  modelId: string;
  modelFile: string;
  minConfidence: number;
  triggerClasses: string[];
  crop?: boolean;
  cropClass?: string;
  multiClass?: boolean;
  expectedClasses?: string[];
  parallel?: boolean;
  resizeTarget?: [number, number];
  branches?: PipelineNode[];
  actions?: Action[];
  parallelActions?: Action[];
  task?: 'detect' | 'classify' | 'ocr';
  ocr?: OcrConfig;
  cropMargin?: number;
  outputFormat?: 'yolov8' | 'yolov5' | 'end2end' | 'classify';
  classNames?: string[];
  labelsFile?: string;
  iouThreshold?: number;
  softmax?: boolean;
  preprocess?: Static<typeof PreprocessSchema>;
  outputField?: string;
  /** Root node only. */
  tracking?: TrackingConfig;
}

/**
 * Extension: a text-reading node (`task: "ocr"`), e.g. a licence-plate reader on a plate
 * detector's crop. The model's layout (fixed slots or CTC) is read from its shapes; these
 * keys give what the shapes cannot (the characters) and what a read must look like.
 */
export const OcrSchema = Type.Object(
  {
    alphabet: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'fixed-slot models: the characters in output order (pad character included)' })),
    padChar: Type.Optional(Type.String({ minLength: 1, maxLength: 1, description: 'fixed-slot models: the padding character, stripped from reads' })),
    config: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'archive file: fast-plate-ocr yaml (max_plate_slots, alphabet, pad_char, img_height, img_width, image_color_mode)' })),
    dictionary: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'archive file: CTC dictionary, one character per line (class 0 is the blank)' })),
    format: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'regular expression a read must match (e.g. ^[A-Z0-9]{5,8}$), else it is reported as no read' })),
    minLength: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'fewest characters of a read' })),
    rectify: Type.Optional(Type.Boolean({ description: 'warp a quadrilateral plate (detector corners) to a flat rectangle before reading (default true)' })),
    minConfidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'least confidence of the weakest character, else no read (default 0.5)' })),
  },
  strict,
);
export type OcrConfig = Static<typeof OcrSchema>;

/**
 * Extension, root node only: vehicle tracking in the relay. Every key is optional; the relay
 * documents and applies the defaults (README "Vehicle visits").
 */
export const TrackingSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'track vehicles and send one event per visit (default true); false: one event per frame with a detection' })),
    highScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'boxes from this score are matched first and may start tracks' })),
    lowScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'weaker boxes down to this score only keep tracks alive' })),
    newTrackScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'an unmatched box starts a track from this score' })),
    matchIou: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'least IoU to match a box to a track' })),
    confirmHits: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'matches in a row before a track counts' })),
    confirmSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 600, description: 'and seconds since it was first seen' })),
    lostTimeoutSec: Type.Optional(Type.Number({ minimum: 0.1, maximum: 86400, description: 'a track unmatched this long is gone: its visit ends' })),
    zone: Type.Optional(
      Type.Array(Type.Tuple([Type.Number({ minimum: 0 }), Type.Number({ minimum: 0 })]), {
        minItems: 3,
        maxItems: 64,
        description: 'polygon [[x,y],…] in the root node input pixels (the subscription crop), or normalised 0..1 when every value is at most 1; default: the whole crop',
      }),
    ),
    stillSec: Type.Optional(Type.Number({ minimum: 0, maximum: 60, description: 'a visit starts once the car has been at rest this long (0: when it is confirmed in the zone)' })),
    stillShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'at rest: its anchor moved less than this share of its box width over stillSec' })),
    maxRuns: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, description: 'full pipeline runs per visit at most' })),
    maxWaitSec: Type.Optional(Type.Number({ minimum: 0, maximum: 60, description: 'the first full run waits at most this long for a good frame' })),
    rerunGain: Type.Optional(Type.Number({ minimum: 1, maximum: 10, description: 'a later run needs a frame this many times better' })),
  },
  strict,
);
export type TrackingConfig = Static<typeof TrackingSchema>;

/** Recursive node schema; `branches` refers back to the node. */
export const NodeSchema = Type.Recursive(
  (Self) =>
    Type.Object(
      {
        modelId: ModelIdString,
        modelFile: Type.String({ minLength: 1, maxLength: 255 }),
        minConfidence: Type.Number({ minimum: 0, maximum: 1 }),
        triggerClasses: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1 }),
        crop: Type.Optional(Type.Boolean()),
        cropClass: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        multiClass: Type.Optional(Type.Boolean()),
        expectedClasses: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }))),
        parallel: Type.Optional(Type.Boolean()),
        resizeTarget: Type.Optional(Type.Tuple([Type.Integer({ minimum: 8, maximum: 4096 }), Type.Integer({ minimum: 8, maximum: 4096 })], { description: '[width, height] of the model input for crops' })),
        branches: Type.Optional(Type.Array(Self)),
        actions: Type.Optional(Type.Array(ActionSchema)),
        parallelActions: Type.Optional(Type.Array(ActionSchema)),
        // Extensions for ONNX models.
        task: Type.Optional(Type.Union([Type.Literal('detect'), Type.Literal('classify'), Type.Literal('ocr')], { description: 'extension: override the task read from the model; ocr reads text' })),
        ocr: Type.Optional(OcrSchema),
        cropMargin: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'extension: widen a crop branch box by this share of its width/height on each side (default 0, OCR nodes 0.05)' })),
        outputFormat: Type.Optional(
          Type.Union([Type.Literal('yolov8'), Type.Literal('yolov5'), Type.Literal('end2end'), Type.Literal('classify')], { description: 'extension: force an output decoder' }),
        ),
        classNames: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { minItems: 1, maxItems: 100000, description: 'extension: class names when the model has no `names` metadata' })),
        labelsFile: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'extension: archive file with class names (JSON array or one per line)' })),
        iouThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'extension: NMS IoU, default 0.45' })),
        softmax: Type.Optional(Type.Boolean({ description: 'extension: apply softmax to classifier outputs (default: when they are not probabilities)' })),
        preprocess: Type.Optional(PreprocessSchema),
        outputField: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', description: 'extension: extra result field holding the class (default: brand / body_type / color alias rule)' })),
        tracking: Type.Optional(TrackingSchema),
      },
      strict,
    ),
  { $id: 'PipelineNode' },
);

/** Extension: the flat `imageDetection.data.detection` object, as CMS field -> template. */
export const CmsDetectionSchema = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), Template);

/** Extension: the initial-record behaviour (original: Car + Frontal -> car_frontal_info). */
export const InitialRecordSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    table: Type.Optional(Type.String({ minLength: 1, maxLength: 127 })),
    triggerClasses: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1 })),
  },
  strict,
);

export const PipelineFileSchema = Type.Object(
  {
    pipeline: NodeSchema,
    redis: Type.Optional(RedisConfigSchema),
    postgresql: Type.Optional(PostgresConfigSchema),
    cmsDetection: Type.Optional(CmsDetectionSchema),
    initialRecord: Type.Optional(InitialRecordSchema),
  },
  { ...strict, $id: 'PipelineFile' },
);

export type RedisConfig = Static<typeof RedisConfigSchema>;
export type PostgresConfig = Static<typeof PostgresConfigSchema>;
export type RedisSaveImageAction = Static<typeof RedisSaveImageActionSchema>;
export type RedisPublishAction = Static<typeof RedisPublishActionSchema>;
export type PostgresUpdateCombinedAction = Static<typeof PostgresUpdateCombinedActionSchema>;
export type Action = Static<typeof ActionSchema>;
export type Preprocess = Static<typeof PreprocessSchema>;
export type InitialRecordConfig = Static<typeof InitialRecordSchema>;
export interface PipelineFile {
  pipeline: PipelineNode;
  redis?: RedisConfig;
  postgresql?: PostgresConfig;
  cmsDetection?: Record<string, string>;
  initialRecord?: InitialRecordConfig;
}

export type { TSchema };
