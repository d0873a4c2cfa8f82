/**
 * Synthetic pump-camera clips with exact ground truth, generated at test time from fixture
 * vehicle crops: the timeline and ground truth (pure), presets, the ffmpeg renderer and a
 * loopback snapshot camera replaying the frames.
 */
export * from './pump-clip/timeline.js';
export * from './pump-clip/presets.js';
export * from './pump-clip/render.js';
export * from './pump-clip/snapshot-camera.js';
