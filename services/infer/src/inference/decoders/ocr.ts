/**
 * Text readers: which layout a model is (from its input and output shapes and the node's
 * character set) and the decoder per layout, like registry.ts does for detectors.
 * - slots: fast-plate-ocr, input uint8 `[N, H, W, C]` (NHWC), output `[N, slots, alphabet]`;
 * - ctc:   PaddleOCR recognition, input float32 `[N, 3, 48, W]` (NCHW), output `[N, T, classes]`
 *          with classes = dictionary + blank (+ a space class some exports add).
 */
import type { OcrLayout, TextRead } from '../types.js';
import { decodeCtc } from './ocr-ctc.js';
import { decodeSlots } from './ocr-slots.js';
import { known, shapeText, unsupported } from './shape.js';
import { coded } from '../../error-codes.js';

const badInput = (message: string) => coded('MODEL_INPUT_UNSUPPORTED', message);

export interface OcrTensorInfo {
  type: string;
  dims: ReadonlyArray<number | string>;
}

/** What the node's files say the characters are. */
export interface OcrCharset {
  /** Fixed-slot alphabet (pad character included), in output order. */
  alphabet?: readonly string[];
  padChar?: string;
  /** CTC dictionary (classes after the blank). */
  dictionary?: readonly string[];
  /** From a fast-plate-ocr config, when the model's dims are symbolic. */
  height?: number;
  width?: number;
  channels?: 1 | 3;
}

export interface OcrModelLayout {
  layout: OcrLayout;
  input: 'uint8-nhwc' | 'float32-nchw';
  width: number;
  height: number;
  channels: 1 | 3;
}

/** PaddleOCR's recognisers are trained at height 48; their width is dynamic (320 is their default). */
const CTC_HEIGHT = 48;
const CTC_DEFAULT_WIDTH = 320;

/** Picks the layout or throws MODEL_OUTPUT_UNSUPPORTED / MODEL_INPUT_UNSUPPORTED naming the shapes. */
export function detectOcrLayout(input: OcrTensorInfo, output: OcrTensorInfo, charset: OcrCharset): OcrModelLayout {
  const out = output.dims;
  const shapes = `input ${input.type}${shapeText(input.dims)}, output ${output.type}${shapeText(out)}`;
  if (out.length !== 3 || output.type !== 'float32') {
    throw unsupported(`OCR model output must be float32 [N, slots, alphabet] (fixed slots) or [N, steps, classes] (CTC); ${shapes}`, out);
  }
  const classes = known(out[2]);
  const dims = input.dims;
  if (charset.dictionary) {
    const dict = charset.dictionary.length;
    if (classes !== null && classes !== dict + 1 && classes !== dict + 2) {
      throw unsupported(`CTC output has ${classes} classes; the dictionary gives ${dict} characters + blank (${dict + 1}, or ${dict + 2} with a space class); ${shapes}`, out);
    }
    if (input.type !== 'float32' || dims.length !== 4 || (known(dims[1]) !== null && dims[1] !== 3)) {
      throw badInput(`CTC OCR needs a float32 [N, 3, 48, W] input; ${shapes}`);
    }
    const height = known(dims[2]) ?? CTC_HEIGHT;
    return { layout: 'ctc', input: 'float32-nchw', height, width: known(dims[3]) ?? CTC_DEFAULT_WIDTH, channels: 3 };
  }
  if (charset.alphabet) {
    const size = charset.alphabet.length;
    if (classes !== null && classes !== size) throw unsupported(`fixed-slot output has ${classes} classes per slot; the alphabet has ${size}; ${shapes}`, out);
    if (known(out[1]) === null) throw unsupported(`fixed-slot output needs a known number of slots; ${shapes}`, out);
    const channels = known(dims[3]) ?? charset.channels ?? 3;
    if (input.type !== 'uint8' || dims.length !== 4 || (channels !== 1 && channels !== 3)) {
      throw badInput(`fixed-slot OCR needs a uint8 [N, H, W, 1|3] (NHWC) input; ${shapes}`);
    }
    const height = known(dims[1]) ?? charset.height;
    const width = known(dims[2]) ?? charset.width;
    if (!height || !width) throw badInput(`fixed-slot OCR input size is symbolic and no config gives img_height/img_width; ${shapes}`);
    return { layout: 'slots', input: 'uint8-nhwc', height, width, channels: channels as 1 | 3 };
  }
  throw unsupported(`an OCR node needs its characters: ocr.alphabet or ocr.config (fixed slots) or ocr.dictionary (CTC); ${shapes}`, out);
}

/** Decodes batch item `item` of an OCR output. */
export function decodeText(layout: OcrLayout, data: Float32Array, dims: readonly number[], item: number, charset: OcrCharset): TextRead {
  if (layout === 'ctc') return decodeCtc(data, dims, item, charset.dictionary ?? []);
  return decodeSlots(data, dims, item, charset.alphabet ?? [], charset.padChar ?? '');
}
