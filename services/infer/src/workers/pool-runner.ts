/**
 * The model runner the service uses: fits the image to the node's input with sharp (on libvips threads),
 * then hands pixels to a worker thread for tensor building, session.run and decoding.
 */
import { performance } from 'node:perf_hooks';
import { toSourceBox, toSourcePoint } from '../inference/letterbox.js';
import type { Box, TextRead } from '../inference/types.js';
import type { FitTarget, FrameImage } from '../images/frame-image.js';
import type { NodeRunner } from '../pipeline/ports.js';
import type { Detection } from '../pipeline/types.js';
import type { PoolModel, PoolNode } from './pool-model.js';
import type { InferencePool } from './pool.js';

export class PoolNodeRunner implements NodeRunner<PoolModel, FrameImage> {
  constructor(private readonly pool: InferencePool) {}

  async detect(node: PoolNode, image: FrameImage, minConfidence: number, wholeFrameLater = node.decodeFullFrame): Promise<{ detections: Detection[]; timings: { preprocess: number; inference: number } }> {
    const model = node.model;
    if (model.format === 'classify' || model.format === 'ocr-slots' || model.format === 'ocr-ctc') throw new Error(`${node.spec.modelId} is not a detector`);
    const format = model.format;
    const { fitted, input, fitMs } = await this.prepare(node, image, wholeFrameLater);
    const reply = await this.pool.detect({
      kind: 'detect',
      ...input,
      format,
      confThreshold: minConfidence,
      iouThreshold: model.iouThreshold,
      classFilter: node.classFilter,
      numClasses: node.classNames.length,
    });
    const detections = reply.detections.map((d): Detection => {
      const box = toSourceBox(d.box, fitted.info).map((v) => Math.round(v)) as Box;
      const det: Detection = { class: node.classNames[d.classIndex] ?? String(d.classIndex), confidence: round4(d.confidence), bbox: box, id: null };
      if (d.keypoints) det.keypoints = d.keypoints.map((p) => toSourcePoint(p, fitted.info).map((v) => Math.round(v)) as [number, number]);
      return det;
    });
    return { detections, timings: { preprocess: fitMs + reply.tensorMs, inference: reply.inferMs + reply.decodeMs } };
  }

  /** Pixels fitted to the node's input, and the task fields every model run shares. */
  private async prepare(node: PoolNode, image: FrameImage, wholeFrameLater = node.decodeFullFrame) {
    const t0 = performance.now();
    const { model } = node;
    const fitted = await image.fitted(model.fit, { preferFullDecode: wholeFrameLater });
    const input = {
      session: model.session,
      pixels: fitted.pixels,
      width: fitted.width,
      height: fitted.height,
      norm: model.norm,
      inputName: model.inputName,
      ...(fitted.placement ? { placement: fitted.placement } : {}),
    };
    return { fitted, input, fitMs: performance.now() - t0 };
  }

  async read(node: PoolNode, image: FrameImage): Promise<{ read: TextRead; timings: { preprocess: number; inference: number } }> {
    const model = node.model;
    const ocr = model.ocr;
    if (!ocr) throw new Error(`${node.spec.modelId} is not a text reader`);
    const t0 = performance.now();
    const fitted = await image.fitted(ocrFit(model, image));
    const fitMs = performance.now() - t0;
    const reply = await this.pool.ocr({
      kind: 'ocr',
      session: model.session,
      pixels: fitted.pixels,
      items: 1,
      width: fitted.width,
      height: fitted.height,
      channels: ocr.channels,
      input: ocr.input,
      norm: model.norm,
      inputName: model.inputName,
      layout: ocr.layout,
      charset: ocr.charset,
    });
    const read = reply.reads[0] ?? { text: '', characters: [] };
    return { read, timings: { preprocess: fitMs + reply.tensorMs, inference: reply.inferMs + reply.decodeMs } };
  }

  async classify(node: PoolNode, image: FrameImage): Promise<{ className: string; confidence: number; timings: { preprocess: number; inference: number } }> {
    const { input, fitMs } = await this.prepare(node, image);
    const reply = await this.pool.classify({ kind: 'classify', ...input, softmax: node.model.softmax });
    return {
      className: node.classNames[reply.classIndex] ?? String(reply.classIndex),
      confidence: round4(reply.confidence),
      timings: { preprocess: fitMs + reply.tensorMs, inference: reply.inferMs },
    };
  }
}

/**
 * The node's model input for an OCR crop: fixed-size models get their size; a CTC model
 * with a dynamic width gets the crop's own aspect at its fixed height, so a short plate is
 * not stretched across a 320-pixel line.
 */
export function ocrFit(model: PoolModel, image: { width: number; height: number }): FitTarget {
  const ocr = model.ocr;
  if (!ocr?.dynamicWidth) return model.fit;
  const width = Math.max(16, Math.min(ocr.maxWidth, Math.round((model.fit.height * image.width) / Math.max(1, image.height))));
  return { ...model.fit, width };
}

/** float32 scores carry noise digits (0.8999999761…) that say nothing. */
function round4(n: number): number {
  return Math.round(n * 10000) / 10000;
}
