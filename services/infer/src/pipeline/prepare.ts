/**
 * Builds the prepared tree of a validated pipeline.json: each node's model is loaded through
 * the injected loader, then the tree rules are checked against what the models really are,
 * so a pipeline that could never run fails at load with the node's JSON path:
 * - a root detector must keep at least one of its trigger classes;
 * - a branch's trigger classes must be classes of its parent, or it could never run;
 * - a classification node has no regions, so it cannot have branches.
 */
import type { PipelineFile, PipelineNode } from '@detector-worker/shared/pipeline/schema';
import type { PreparedNode, PreparedPipeline } from './node.js';
import type { NodeModelLoader } from './ports.js';
import { pipelineProblem } from '../error-codes.js';


/** Case-sensitive match first, then case-insensitive (as the original looked up regions). */
export function findClassIndex(names: readonly string[], wanted: string): number {
  const exact = names.indexOf(wanted);
  if (exact >= 0) return exact;
  const lower = wanted.toLowerCase();
  return names.findIndex((n) => n.toLowerCase() === lower);
}

/** Crop branches and saved regions need the frame's full-resolution pixels (a whole-frame save only re-encodes). */
function needsFullFrame(node: PipelineNode): boolean {
  return (node.branches ?? []).some((b) => b.crop === true) || [...(node.actions ?? []), ...(node.parallelActions ?? [])].some((a) => a.type === 'redis_save_image' && a.region !== undefined);
}

async function prepareNode<M>(node: PipelineNode, path: string, loader: NodeModelLoader<M>, parentClasses: string[] | null): Promise<PreparedNode<M>> {
  const loaded = await loader.load(node, path);
  const { task, classNames: names } = loaded;

  let classFilter: number[] | null = null;
  if (task === 'detect') {
    const own = node.triggerClasses.map((c) => findClassIndex(names, c)).filter((i) => i >= 0);
    if (parentClasses === null && own.length === 0) {
      throw pipelineProblem(`${path}.triggerClasses`, `none of ${JSON.stringify(node.triggerClasses)} is a class of ${node.modelFile} (classes: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})`);
    }
    classFilter = own.length ? [...new Set(own)] : null;
  }
  if (parentClasses) {
    node.triggerClasses.forEach((c, i) => {
      if (findClassIndex(parentClasses, c) < 0) throw pipelineProblem(`${path}.triggerClasses[${i}]`, `"${c}" is not a class of the parent node, so this branch could never run`);
    });
  }

  const branches: PreparedNode<M>[] = [];
  for (const [i, b] of (node.branches ?? []).entries()) {
    const branchPath = `${path}.branches[${i}]`;
    if (task !== 'detect') throw pipelineProblem(branchPath, 'a classification node has no regions, so it cannot have branches');
    branches.push(await prepareNode(b, branchPath, loader, names));
  }
  return { spec: node, path, task, classNames: names, classFilter, branches, modelBytes: loaded.bytes, decodeFullFrame: needsFullFrame(node), model: loaded.model };
}

/** The prepared tree under `key`; the caller releases what the loader loaded when this throws. */
export async function preparePipeline<M>(key: string, file: PipelineFile, loader: NodeModelLoader<M>): Promise<PreparedPipeline<M>> {
  const root = await prepareNode(file.pipeline, '$.pipeline', loader, null);
  let modelBytes = 0;
  const walk = (n: PreparedNode<M>): void => {
    modelBytes += n.modelBytes;
    n.branches.forEach(walk);
  };
  walk(root);
  return { key, file, root, modelBytes };
}
