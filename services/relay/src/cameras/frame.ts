/**
 * One camera picture, as the readers deliver it, and when it was taken. Snapshot cameras
 * deliver their JPEG as it came; RTSP cameras deliver the decoded pixels (interleaved RGB,
 * row by row) so the relay cuts and shrinks them without decoding, and encodes a JPEG only
 * when a whole frame must travel (frame-images.ts: frameJpeg).
 */
export type Frame = FrameInfo & FramePicture;

export type FramePicture = { jpeg: Buffer; rgb?: undefined } | { rgb: Buffer; jpeg?: undefined };

export interface FrameInfo {
  /** Pixel size (from the JPEG's frame header, or the decoded frame). */
  width: number;
  height: number;
  capturedAt: Date;
  /** Increases by one per frame of this camera. */
  seq: number;
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
