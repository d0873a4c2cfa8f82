import type { Preview } from './preview.js';

/** One decoded camera picture, as the readers deliver it: JPEG bytes and when it was taken. */
export interface Frame {
  jpeg: Buffer;
  /** Pixel size, from the JPEG's frame header (read by the reader's completeness check). */
  width: number;
  height: number;
  capturedAt: Date;
  /** Increases by one per frame of this camera. */
  seq: number;
  /** The picture scaled down (RTSP cameras with FRAME_PREVIEW_WIDTH): what motion and detect images are cut from. */
  preview?: Preview;
}

export interface CameraSource {
  kind: 'rtsp' | 'snapshot';
  url: string;
  /** Snapshot polling period. */
  intervalMs?: number;
}

/** Cameras are shared by URL (the protocol: one stream per camera). */
export function cameraKey(source: CameraSource): string {
  return `${source.kind}:${source.url}`;
}
