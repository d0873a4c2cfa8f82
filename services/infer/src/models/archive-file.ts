/**
 * Writes an archive body to disk without trusting it: counted against the size cap while it
 * streams, hashed, its zip signature checked on the first bytes (an HTML error page fails at
 * once), into `.<name>.<random>.part` beside the destination, renamed into place only when
 * complete. Any failure removes the temp file.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { WriteStream } from 'node:fs';
import { mkdir, open as openFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { redactUrl } from '@detector-worker/shared/logging';
import { coded } from '../error-codes.js';

/** Local-file signature of a zip entry, and the end record of an empty zip. */
const ZIP_SIGNATURES = [Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('PK\x05\x06', 'latin1')];

export interface ArchiveSink {
  maxBytes: number;
  onProgress?: (received: number, total: number | null) => void;
  signal?: AbortSignal;
  /** Maps an error of the source stream (the network) onto the API's codes. */
  sourceError: (err: unknown) => CodedError;
}

export interface SavedArchive {
  bytes: number;
  sha256: string;
}

/**
 * Streams into `.<name>.<random>.part` beside destFile while counting, hashing and checking
 * the zip signature, then renames. Any failure removes the temp file.
 */
export async function saveStream(
  open: () => Readable,
  total: number | null,
  destFile: string,
  opts: ArchiveSink,
  source: URL,
): Promise<SavedArchive> {
  const dir = dirname(destFile);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw storageError(err);
  }
  const tempFile = join(dir, `.${basename(destFile)}.${randomBytes(6).toString('hex')}.part`);
  const hash = createHash('sha256');
  let received = 0;
  let head = Buffer.alloc(0);

  const inspect = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > opts.maxBytes) return callback(tooLarge(received, opts.maxBytes, true));
      if (head.length < 4) {
        head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
        // Fail fast on HTML error pages and the like instead of downloading them whole.
        if (head.length === 4 && !isZipSignature(head)) return callback(notZip(source));
      }
      hash.update(chunk);
      try {
        opts.onProgress?.(received, total);
      } catch {
        // A faulty progress listener must not break the download.
      }
      callback(null, chunk);
    },
  });

  // Open before streaming so that the cleanup below can never run ahead of the file's creation.
  let sink: WriteStream;
  try {
    sink = (await openFile(tempFile, 'wx')).createWriteStream();
  } catch (err) {
    throw storageError(err);
  }
  // pipeline() hands the first error to every stream; only one that starts at the disk is a storage fault.
  let origin: 'source' | 'sink' | undefined;
  sink.once('error', () => {
    origin ??= 'sink';
  });

  try {
    const input = open();
    input.once('error', () => {
      origin ??= 'source';
    });
    inspect.once('error', () => {
      origin ??= 'source';
    });
    if (opts.signal) await pipeline(input, inspect, sink, { signal: opts.signal });
    else await pipeline(input, inspect, sink);
    if (head.length < 4 || !isZipSignature(head)) throw notZip(source);
    await rename(tempFile, destFile);
  } catch (err) {
    await closed(sink);
    await unlink(tempFile).catch(() => undefined);
    if (err instanceof CodedError) throw err;
    if (origin === 'sink' && !opts.signal?.aborted) throw storageError(err);
    throw opts.sourceError(err);
  }
  return { bytes: received, sha256: hash.digest('hex') };
}

/** Resolves once the stream has released its file descriptor. */
function closed(stream: WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  if (!stream.destroyed) stream.destroy();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

function isZipSignature(head: Buffer): boolean {
  return ZIP_SIGNATURES.some((sig) => head.subarray(0, 4).equals(sig));
}

function notZip(source: URL): CodedError {
  return coded('ARCHIVE_NOT_ZIP', `${redactUrl(source.href)} did not return a zip archive (.mpta files are zips)`, { url: redactUrl(source.href) });
}

export function tooLarge(bytes: number, maxBytes: number, streaming = false): CodedError {
  const what = streaming ? `more than ${maxBytes} bytes arrived` : `archive is ${bytes} bytes`;
  return coded('MODEL_TOO_LARGE', `${what}; the limit is ${maxBytes} bytes`, { maxBytes });
}

function storageError(err: unknown): CodedError {
  const code = errCode(err);
  return coded('MODEL_STORAGE_FAILED', `cannot write the model archive: ${errorMessage(err)}`, { reason: code }, { cause: err, status: code === 'ENOSPC' ? 507 : 500 });
}

export function errCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // AggregateError from happy-eyeballs connects: report the first concrete cause.
  const inner = (err as { errors?: unknown[] }).errors?.[0] ?? (err as { cause?: unknown }).cause;
  return inner && inner !== err ? errCode(inner) : undefined;
}
