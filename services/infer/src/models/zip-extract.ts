/**
 * Unpacks a zip from a hostile source. Entry names that could escape the target folder and
 * symlinks are refused; entry counts and sizes are capped both by what the headers declare
 * and by the bytes actually inflated (a zip bomb's headers can lie); everything is unpacked
 * into a fresh temp folder that is renamed into place only once it is complete. Knows
 * nothing of pipelines: mpta-layout.ts reads the `.mpta` layout on top of it.
 */
import { randomBytes } from 'node:crypto';
import type { WriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import JSZip from 'jszip';
import { CodedError, errorMessage } from '@detector-worker/shared/errors';
import { coded } from '../error-codes.js';

export interface ArchiveLimits {
  maxEntries: number;
  /** Cap on the sum of all entries' sizes, declared and actually inflated. */
  maxUncompressedBytes: number;
  /** Cap on any single entry; defaults to maxUncompressedBytes. */
  maxEntryBytes?: number;
}

export interface ExtractedEntry {
  /** Normalised relative name, `/`-separated, without a trailing slash. */
  name: string;
  dir: boolean;
  bytes: number;
}

export interface ExtractedArchive {
  /** Absolute folder the archive was unpacked into (destDir). */
  dir: string;
  /** In archive order. */
  entries: ExtractedEntry[];
  totalBytes: number;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Unpacks `zipFile` into `destDir` (replacing it) with every safety check applied. */
export async function extractArchive(zipFile: string, destDir: string, limits: ArchiveLimits): Promise<ExtractedArchive> {
  const target = resolve(destDir);
  const temp = await makeTempDir(target);
  try {
    const entries = await extractInto(zipFile, temp, limits);
    await moveIntoPlace(temp, target);
    return { dir: target, entries, totalBytes: entries.reduce((sum, e) => sum + e.bytes, 0) };
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Checks an entry name and returns it normalised (`.` and empty segments dropped, no
 * trailing slash; '' for the root folder). Throws ARCHIVE_UNSAFE_ENTRY for names that are
 * absolute, carry a drive letter or backslash, contain `..` segments or NUL.
 */
export function normaliseEntryName(raw: string): string {
  const unsafe = (why: string) => coded('ARCHIVE_UNSAFE_ENTRY', `archive entry ${JSON.stringify(raw)} ${why}`, { entry: raw });
  if (raw.includes('\0')) throw unsafe('contains a NUL character');
  // Backslashes are separators on Windows extractors: `..\\x` must not slip past the `..` check.
  if (raw.includes('\\')) throw unsafe('contains a backslash');
  if (raw.startsWith('/')) throw unsafe('is an absolute path');
  if (/^[A-Za-z]:/.test(raw)) throw unsafe('starts with a drive letter');
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw unsafe('contains a ".." segment');
  return segments.join('/');
}

function unixMode(value: number | string | null | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^[0-7]+$/.test(value)) return parseInt(value, 8);
  return undefined;
}

/** Size the entry's headers claim; jszip keeps it on the entry's compressed-data object. */
function declaredSize(entry: JSZip.JSZipObject): number | undefined {
  const size = (entry as unknown as { _data?: { uncompressedSize?: unknown } })._data?.uncompressedSize;
  return typeof size === 'number' && size >= 0 ? size : undefined;
}

interface PlannedEntry {
  name: string;
  dir: boolean;
  zipEntry: JSZip.JSZipObject;
}

export async function extractInto(zipFile: string, root: string, limits: ArchiveLimits): Promise<ExtractedEntry[]> {
  const maxEntryBytes = Math.min(limits.maxEntryBytes ?? limits.maxUncompressedBytes, limits.maxUncompressedBytes);
  let data: Buffer;
  try {
    data = await readFile(zipFile);
  } catch (err) {
    throw coded('ARCHIVE_READ_FAILED', `cannot read the archive: ${errorMessage(err)}`, undefined, { cause: err });
  }
  let zip: JSZip;
  try {
    // No checkCRC32 here: it would inflate every entry in memory before the size checks below.
    zip = await JSZip.loadAsync(data, { createFolders: false });
  } catch (err) {
    throw coded('ARCHIVE_NOT_ZIP', `the archive is not a readable zip: ${errorMessage(err)}`, undefined, { cause: err });
  }

  const zipEntries = Object.values(zip.files);
  if (zipEntries.length > limits.maxEntries) {
    throw coded('ARCHIVE_TOO_MANY_ENTRIES', `the archive has ${zipEntries.length} entries; the limit is ${limits.maxEntries}`, {
      entries: zipEntries.length,
      maxEntries: limits.maxEntries,
    });
  }

  // Plan first (names, types, declared sizes), so a bad archive is refused before any byte is written.
  const planned: PlannedEntry[] = [];
  const kinds = new Map<string, 'dir' | 'file'>();
  let declaredTotal = 0;
  for (const zipEntry of zipEntries) {
    // jszip silently resolves `..` in names; judge the name as it was written in the zip.
    const raw = zipEntry.unsafeOriginalName ?? zipEntry.name;
    const name = normaliseEntryName(raw);
    if (name !== normaliseEntryName(zipEntry.name)) {
      throw coded('ARCHIVE_UNSAFE_ENTRY', `archive entry ${JSON.stringify(raw)} has an ambiguous name`, { entry: raw });
    }
    const mode = unixMode(zipEntry.unixPermissions);
    if (mode !== undefined && (mode & S_IFMT) === S_IFLNK) {
      throw coded('ARCHIVE_UNSAFE_ENTRY', `archive entry ${JSON.stringify(raw)} is a symbolic link`, { entry: raw });
    }
    if (name === '') continue; // the archive root itself ("./")
    const kind = zipEntry.dir ? 'dir' : 'file';
    const prior = kinds.get(name);
    if (prior && !(prior === 'dir' && kind === 'dir')) {
      throw coded('ARCHIVE_UNSAFE_ENTRY', `archive entry ${JSON.stringify(raw)} appears more than once`, { entry: raw });
    }
    kinds.set(name, kind);
    const size = kind === 'file' ? declaredSize(zipEntry) : 0;
    if (size !== undefined) {
      if (size > maxEntryBytes) throw entryTooLarge(raw, size, maxEntryBytes);
      declaredTotal += size;
      if (declaredTotal > limits.maxUncompressedBytes) throw archiveTooLarge(declaredTotal, limits.maxUncompressedBytes, false);
    }
    planned.push({ name, dir: kind === 'dir', zipEntry });
  }
  // A file that is also the parent of another entry cannot be unpacked faithfully.
  for (const { name } of planned) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (kinds.get(parent) === 'file') {
        throw coded('ARCHIVE_UNSAFE_ENTRY', `archive entry ${JSON.stringify(name)} lies below the file ${JSON.stringify(parent)}`, { entry: name });
      }
    }
  }

  const state = { total: 0 };
  const out: ExtractedEntry[] = [];
  for (const entry of planned) {
    const target = resolve(root, ...entry.name.split('/'));
    // Belt and braces: the name checks above already rule this out.
    if (!target.startsWith(root + sep)) {
      throw coded('ARCHIVE_UNSAFE_ENTRY', `archive entry ${JSON.stringify(entry.name)} escapes the target folder`, { entry: entry.name });
    }
    if (entry.dir) {
      await mkdir(target, { recursive: true }).catch((err: unknown) => {
        throw storageError(err);
      });
      out.push({ name: entry.name, dir: true, bytes: 0 });
      continue;
    }
    await mkdir(dirname(target), { recursive: true }).catch((err: unknown) => {
      throw storageError(err);
    });
    const bytes = await inflateEntry(entry, target, state, maxEntryBytes, limits.maxUncompressedBytes);
    out.push({ name: entry.name, dir: false, bytes });
  }
  return out;
}

/** jszip's documented-but-untyped StreamHelper (`JSZipObject#internalStream`). */
interface InflateStream {
  on(event: 'data', listener: (chunk: Uint8Array) => void): InflateStream;
  on(event: 'error', listener: (err: unknown) => void): InflateStream;
  on(event: 'end', listener: () => void): InflateStream;
  pause(): InflateStream;
  resume(): InflateStream;
}

/**
 * Streams one entry to disk, counting the inflated bytes as pako produces them and stopping
 * as soon as a cap is passed. jszip's StreamHelper is used rather than its Node stream
 * because the Node stream buffers ahead of the consumer: a tiny bomb chunk would be inflated
 * completely before a Transform downstream got to count it.
 */
async function inflateEntry(entry: PlannedEntry, target: string, state: { total: number }, maxEntryBytes: number, maxTotal: number): Promise<number> {
  // Opened before inflating so that a failed load's cleanup never runs ahead of the file's creation.
  let sink: WriteStream;
  try {
    sink = (await open(target, 'wx', 0o644)).createWriteStream();
  } catch (err) {
    throw storageError(err);
  }
  const source = (entry.zipEntry as unknown as { internalStream(type: 'uint8array'): InflateStream }).internalStream('uint8array');
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    let failed = false;
    let waitingForDrain = false;
    const fail = (err: CodedError): void => {
      if (failed) return;
      failed = true;
      source.pause();
      void closed(sink).then(() => reject(err));
    };
    source.on('data', (chunk) => {
      if (failed) return;
      bytes += chunk.length;
      state.total += chunk.length;
      if (bytes > maxEntryBytes) return fail(entryTooLarge(entry.name, bytes, maxEntryBytes, true));
      if (state.total > maxTotal) return fail(archiveTooLarge(state.total, maxTotal, true));
      // One inflated block can arrive as many chunks after a pause; wait for a single drain.
      if (!sink.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        source.pause();
        sink.once('drain', () => {
          waitingForDrain = false;
          if (!failed) source.resume();
        });
      }
    });
    // Inflate failures and jszip's own size-mismatch check (headers that lie) land here.
    source.on('error', (err) => {
      fail(coded('ARCHIVE_CORRUPT', `archive entry ${JSON.stringify(entry.name)} cannot be unpacked: ${errorMessage(err)}`, { entry: entry.name }, { cause: err }));
    });
    source.on('end', () => {
      if (!failed) sink.end();
    });
    sink.on('error', (err) => fail(storageError(err)));
    sink.on('close', () => {
      if (!failed) resolve(bytes);
    });
    source.resume();
  });
}

/** Resolves once the stream has released its file descriptor. */
function closed(stream: WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  if (!stream.destroyed) stream.destroy();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}

function entryTooLarge(name: string, bytes: number, max: number, inflated = false): CodedError {
  const what = inflated ? `inflates to more than ${max} bytes` : `declares ${bytes} bytes`;
  return coded('ARCHIVE_TOO_LARGE', `archive entry ${JSON.stringify(name)} ${what}; the limit per entry is ${max}`, { entry: name, maxEntryBytes: max });
}

function archiveTooLarge(bytes: number, max: number, inflated: boolean): CodedError {
  const what = inflated ? `inflates to more than ${max} bytes` : `declares ${bytes} uncompressed bytes`;
  return coded('ARCHIVE_TOO_LARGE', `the archive ${what}; the limit is ${max}`, { maxUncompressedBytes: max });
}

function storageError(err: unknown): CodedError {
  const code = (err as { code?: unknown }).code;
  return coded('ARCHIVE_STORAGE_FAILED', `cannot write the unpacked archive: ${errorMessage(err)}`, undefined, { cause: err, status: code === 'ENOSPC' ? 507 : 500 });
}

export async function makeTempDir(target: string): Promise<string> {
  try {
    await mkdir(dirname(target), { recursive: true });
    return await mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`));
  } catch (err) {
    throw storageError(err);
  }
}

/** Renames temp over target; an existing target is swapped out and removed afterwards. */
export async function moveIntoPlace(temp: string, target: string): Promise<void> {
  try {
    await rename(temp, target);
    return;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw storageError(err);
  }
  const old = `${target}.old-${randomBytes(4).toString('hex')}`;
  try {
    await rename(target, old);
  } catch (err) {
    throw storageError(err);
  }
  try {
    await rename(temp, target);
  } catch (err) {
    await rename(old, target).catch(() => undefined);
    throw storageError(err);
  }
  await rm(old, { recursive: true, force: true }).catch(() => undefined);
}
