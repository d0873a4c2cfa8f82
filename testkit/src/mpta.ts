/**
 * Test-time builder of `.mpta` archives (zip: pipeline.json + model files). Tests of the
 * archive loader, the model cache and the HTTP API build their archives here instead of
 * committing binary zips. The fixture models are read from ../shared/fixtures and are
 * never copied into the repository.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import JSZip from 'jszip';
import { fixture } from './fixtures.js';

/** An archive entry with zip-level attributes (e.g. a symlink's unix mode). */
export interface MptaEntry {
  data: Buffer | string;
  /** Unix mode including the file type bits, e.g. 0o120777 for a symlink. */
  unixPermissions?: number;
  /** A directory entry (data is ignored). */
  dir?: boolean;
}

export interface MptaSpec {
  /** pipeline.json content: an object (serialised) or a raw string (for invalid JSON). Omit for an archive without one. */
  pipeline?: object | string;
  /** Extra entries, by name relative to `folder` (names are written as given: `../x` stays `../x`). */
  files?: Record<string, Buffer | string | MptaEntry>;
  /** Put everything under this one top-level folder (like archives zipped from a folder). */
  folder?: string;
  /** Default STORE (fast, fits already-dense ONNX files); DEFLATE for zip-bomb tests. */
  compression?: 'STORE' | 'DEFLATE';
}

function isEntry(value: Buffer | string | MptaEntry): value is MptaEntry {
  return typeof value === 'object' && !Buffer.isBuffer(value);
}

/** Builds the zip in memory. Entries are added in order: pipeline.json first, then `files`. */
export async function buildMpta(spec: MptaSpec): Promise<Buffer> {
  const zip = new JSZip();
  const prefix = spec.folder ? `${spec.folder.replace(/\/+$/, '')}/` : '';
  // createFolders: false keeps names exactly as written, so hostile names reach the archive unchanged.
  if (spec.pipeline !== undefined) {
    const text = typeof spec.pipeline === 'string' ? spec.pipeline : JSON.stringify(spec.pipeline, null, 2);
    zip.file(`${prefix}pipeline.json`, text, { createFolders: false });
  }
  for (const [name, value] of Object.entries(spec.files ?? {})) {
    if (isEntry(value)) {
      const mode = value.unixPermissions !== undefined ? { unixPermissions: value.unixPermissions } : {};
      if (value.dir) zip.file(`${prefix}${name}`, null, { createFolders: false, dir: true, ...mode });
      else zip.file(`${prefix}${name}`, value.data, { createFolders: false, binary: typeof value.data !== 'string', ...mode });
    } else {
      zip.file(`${prefix}${name}`, value, { createFolders: false, binary: typeof value !== 'string' });
    }
  }
  return zip.generateAsync({
    type: 'nodebuffer',
    compression: spec.compression ?? 'STORE',
    compressionOptions: { level: 9 },
    // UNIX makes jszip write the unix mode bits, which symlink tests need.
    platform: 'UNIX',
  });
}

/** Writes `buildMpta(spec)` to `dir/name` (the folder is created) and returns the path. */
export async function writeMpta(dir: string, name: string, spec: MptaSpec): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, await buildMpta(spec));
  return path;
}

/**
 * Rewrites the declared uncompressed size of every entry (local headers and central
 * directory) to `size`, leaving the data alone: a zip whose headers lie, as zip bombs do.
 * Only for the plain archives buildMpta makes (no zip64, no data descriptors).
 */
export function withDeclaredSize(zip: Buffer, size: number): Buffer {
  const out = Buffer.from(zip);
  let offset = 0;
  while (offset + 30 <= out.length && out.readUInt32LE(offset) === 0x04034b50) {
    const compressed = out.readUInt32LE(offset + 18);
    out.writeUInt32LE(size, offset + 22);
    offset += 30 + out.readUInt16LE(offset + 26) + out.readUInt16LE(offset + 28) + compressed;
  }
  while (offset + 46 <= out.length && out.readUInt32LE(offset) === 0x02014b50) {
    out.writeUInt32LE(size, offset + 24);
    offset += 46 + out.readUInt16LE(offset + 28) + out.readUInt16LE(offset + 30) + out.readUInt16LE(offset + 32);
  }
  return out;
}

export const STANDARD_DETECTOR_FILE = 'yolov8n_fp32.onnx';
export const STANDARD_CLASSIFIER_FILE = 'car_color_cls.onnx';
export const STANDARD_DETECTOR_ID = 'vehicle_det_v1';
export const STANDARD_CLASSIFIER_ID = 'car_color_cls_v1';

/**
 * The standard two-level test pipeline: a COCO YOLOv8n detector for car/truck/bus with a
 * parallel colour classifier on the best `car` crop. A fresh object each call, so a test
 * may change it before building.
 */
export function standardPipeline(): {
  pipeline: {
    modelId: string;
    modelFile: string;
    minConfidence: number;
    triggerClasses: string[];
    crop: boolean;
    branches: Array<Record<string, unknown>>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
} {
  return {
    pipeline: {
      modelId: STANDARD_DETECTOR_ID,
      modelFile: STANDARD_DETECTOR_FILE,
      minConfidence: 0.25,
      triggerClasses: ['car', 'truck', 'bus'],
      crop: false,
      branches: [
        {
          modelId: STANDARD_CLASSIFIER_ID,
          modelFile: STANDARD_CLASSIFIER_FILE,
          crop: true,
          cropClass: 'car',
          resizeTarget: [224, 224],
          triggerClasses: ['car'],
          // The hand-built colour classifier is sure of clear colours (>0.99) and unsure of
          // muddy ones (~0.4); 0.2 lets most car crops through.
          minConfidence: 0.2,
          parallel: true,
        },
      ],
    },
  };
}

/**
 * Spec of the standard archive with the real fixture models, or undefined after skipping
 * the test when fixtures are absent (see fixture()).
 */
export async function standardMptaSpec(
  t: { skip: (message?: string) => void },
  options: { folder?: string; pipeline?: object } = {},
): Promise<MptaSpec | undefined> {
  const detector = fixture(t, `models/${STANDARD_DETECTOR_FILE}`);
  const classifier = fixture(t, `models/${STANDARD_CLASSIFIER_FILE}`);
  if (!detector || !classifier) return undefined;
  return {
    pipeline: options.pipeline ?? standardPipeline(),
    files: {
      [STANDARD_DETECTOR_FILE]: await readFile(detector),
      [STANDARD_CLASSIFIER_FILE]: await readFile(classifier),
    },
    ...(options.folder ? { folder: options.folder } : {}),
  };
}

/** Writes the standard archive to `dir/name`; undefined when the test was skipped. */
export async function writeStandardMpta(
  t: { skip: (message?: string) => void },
  dir: string,
  name = 'standard.mpta',
  options: { folder?: string; pipeline?: object } = {},
): Promise<string | undefined> {
  const spec = await standardMptaSpec(t, options);
  return spec ? writeMpta(dir, name, spec) : undefined;
}
