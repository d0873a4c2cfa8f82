/**
 * Model outputs to detections and classifications. Layouts (batch 1; only the first image of
 * a batch is decoded), one file each:
 * - yolov8.ts   `[1, 4+nc, N]` (Ultralytics YOLOv8 / YOLO11 detect)
 * - yolov5.ts   `[1, N, 5+nc]`, also with landmark pairs (HyperLPR plates)
 * - end2end.ts  `[1, N, 6]` with NMS inside the model
 * - classify.ts `[1, nc]`
 * - ocr.ts      text readers: fixed slots (ocr-slots.ts) and CTC (ocr-ctc.ts)
 * detect-format.ts picks one for a model at load time; registry.ts dispatches per frame.
 */
export { detectOutputFormat, type FormatOptions } from './detect-format.js';
export { decodeDetections, type DetectionDecoder } from './registry.js';
export { decodeClassification, isProbabilityDistribution, softmax } from './classify.js';
export { decodeText, detectOcrLayout, type OcrCharset, type OcrModelLayout, type OcrTensorInfo } from './ocr.js';
