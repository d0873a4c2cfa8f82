/**
 * Test helpers of the action layer: an ActionImage made with sharp from generated pixels
 * (no fixture files) and an ActionEvent builder with the original car/frontal pipeline.
 */
import sharp from 'sharp';
import type { PipelineNode } from '@detector-worker/shared/pipeline/schema';
import type { Box } from '@detector-worker/infer/inference/types';
import type { ActionImage } from '@detector-worker/infer/pipeline/ports';
import type { ActionEvent, Region, RequestContext } from '@detector-worker/infer/pipeline/types';
import { buildEventContext } from '@detector-worker/infer/pipeline/event-context';

/** A width x height gradient image; encode() crops like FrameImage does (clamped, rounded). */
export async function fakeImage(width = 320, height = 240): Promise<ActionImage & { encodes: number }> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = 128;
    }
  const image = {
    width,
    height,
    encodes: 0,
    async encode(box: Box | undefined, format: 'jpeg' | 'png', quality: number): Promise<Buffer> {
      image.encodes++;
      let s = sharp(pixels, { raw: { width, height, channels: 3 } });
      if (box) {
        const left = Math.max(0, Math.round(box[0]));
        const top = Math.max(0, Math.round(box[1]));
        const right = Math.min(width, Math.round(box[2]));
        const bottom = Math.min(height, Math.round(box[3]));
        s = s.extract({ left, top, width: right - left, height: bottom - top });
      }
      return format === 'png' ? s.png().toBuffer() : s.jpeg({ quality }).toBuffer();
    },
  };
  return image;
}

export function carFrontalNode(overrides: Partial<PipelineNode> = {}): PipelineNode {
  return {
    modelId: 'car_frontal_detection_v1',
    modelFile: 'car_frontal_detection_v1.onnx',
    minConfidence: 0.5,
    triggerClasses: ['Car', 'Frontal'],
    multiClass: true,
    expectedClasses: ['Car', 'Frontal'],
    ...overrides,
  };
}

export interface EventOptions {
  pipelineKey: string;
  image: ActionImage;
  node?: PipelineNode;
  regions?: Record<string, Region>;
  request?: RequestContext;
  detectionClass?: string;
}

export function makeEvent(o: EventOptions): ActionEvent {
  const regions = o.regions ?? {
    Car: { bbox: [10, 20, 210, 170], confidence: 0.91 },
    Frontal: { bbox: [40, 60, 140, 110], confidence: 0.88 },
  };
  const node = o.node ?? carFrontalNode();
  const request = o.request ?? { subscriptionIdentifier: 'display-001;cam-001' };
  const detection = { class: o.detectionClass ?? 'Car', confidence: 0.91, bbox: regions.Car?.bbox ?? ([0, 0, 10, 10] as Box), id: null };
  return {
    pipelineKey: o.pipelineKey,
    node,
    detection,
    regions,
    context: buildEventContext({ detection, request, node: node.modelId }),
    image: o.image,
    branchResults: {},
    request,
  };
}
