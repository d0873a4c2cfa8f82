/**
 * What a node is once its pipeline is loaded: its pipeline.json spec, its place in the tree,
 * what its model turned out to be (task, class names) and the tree rules worked out for it
 * (the class filter, whether its frame will be cropped at full resolution). `model` is the
 * model runner's own handle; the walk never looks inside it.
 */
import type { PipelineFile, PipelineNode } from '@detector-worker/shared/pipeline/schema';

export interface PreparedNode<M = unknown> {
  spec: PipelineNode;
  /** JSON path of the node in pipeline.json. */
  path: string;
  task: 'detect' | 'classify' | 'ocr';
  classNames: string[];
  /** Own-class indices kept by a detector (its triggerClasses among its classes); null keeps all. */
  classFilter: number[] | null;
  branches: PreparedNode<M>[];
  modelBytes: number;
  /**
   * The node's image will be cropped at full resolution (crop branches, saved regions), so
   * decode it fully once and fit the model input from those pixels rather than decoding twice.
   */
  decodeFullFrame: boolean;
  model: M;
}

export interface PreparedPipeline<M = unknown> {
  key: string;
  file: PipelineFile;
  root: PreparedNode<M>;
  modelBytes: number;
}
