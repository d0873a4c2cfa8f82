/**
 * A cheap completeness check for JPEG frames from cameras, instead of a full decode per
 * frame: walk the marker segments (SOI, length-prefixed segments, a frame header with
 * plausible dimensions, at least one scan) and require the entropy-coded data to end with
 * EOI. Inside scan data a 0xFF byte is followed by 0x00 (stuffing), a restart marker
 * (D0-D7) or fill bytes (0xFF); anything else is the next marker, which for progressive and
 * multi-scan images is another table or scan header. Segment lengths are honoured, so an
 * EXIF thumbnail (with its own FFD8...FFD9) inside APP1 cannot be mistaken for the end.
 *
 * Bytes after EOI are accepted (some cameras pad their snapshots, or append data; decoders
 * ignore them): `end` tells where the image ends so the caller can trim them.
 * Pure; never throws; reads nothing outside the buffer.
 */

export type JpegCheck =
  | { ok: true; width: number; height: number; components: number; progressive: boolean; scans: number; end: number }
  | { ok: false; reason: string };

/** SOFn markers (frame headers); C4 (DHT), C8 (JPG), CC (DAC) are not. */
function isSof(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** Markers that stand alone, without a length: TEM and restart markers. */
function isStandalone(m: number): boolean {
  return m === 0x01 || (m >= 0xd0 && m <= 0xd7);
}

const fail = (reason: string): JpegCheck => ({ ok: false, reason });

export function checkJpeg(buf: Buffer): JpegCheck {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return fail('does not start with the JPEG SOI marker (FF D8)');
  let pos = 2;
  let frame: { width: number; height: number; components: number; progressive: boolean } | undefined;
  let scans = 0;
  for (;;) {
    if (pos >= buf.length) return fail(scans ? 'truncated: scan data without an EOI marker (FF D9)' : 'truncated before the image data');
    if (buf[pos] !== 0xff) return fail(`garbage where a marker was expected (offset ${pos})`);
    // Fill bytes: any number of 0xFF may precede a marker.
    while (pos < buf.length && buf[pos] === 0xff) pos++;
    if (pos >= buf.length) return fail('truncated inside a marker');
    const marker = buf[pos]!;
    pos++;
    if (marker === 0x00) return fail(`garbage where a marker was expected (offset ${pos - 2})`);
    if (marker === 0xd9) {
      if (!frame) return fail('EOI before any frame header (SOF)');
      if (!scans) return fail('EOI before any image data (SOS)');
      return { ok: true, ...frame, scans, end: pos };
    }
    if (marker === 0xd8) return fail('a second SOI marker inside the image');
    if (isStandalone(marker)) continue;
    if (pos + 2 > buf.length) return fail('truncated inside a segment length');
    const length = (buf[pos]! << 8) | buf[pos + 1]!;
    if (length < 2) return fail(`segment FF ${hex(marker)} has an impossible length ${length}`);
    const body = pos + 2;
    const next = pos + length;
    if (next > buf.length) return fail(`truncated inside segment FF ${hex(marker)}`);
    if (isSof(marker)) {
      if (frame) return fail('a second frame header (SOF)');
      if (length < 8) return fail('frame header (SOF) too short');
      const precision = buf[body]!;
      const height = (buf[body + 1]! << 8) | buf[body + 2]!;
      const width = (buf[body + 3]! << 8) | buf[body + 4]!;
      const components = buf[body + 5]!;
      if (precision !== 8 && precision !== 12 && precision !== 16) return fail(`implausible sample precision ${precision}`);
      if (width === 0 || height === 0) return fail(`zero dimensions (${width}x${height})`);
      if (components < 1 || components > 4) return fail(`implausible component count ${components}`);
      if (length !== 8 + 3 * components) return fail('frame header (SOF) length does not match its component count');
      frame = { width, height, components, progressive: marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce };
      pos = next;
      continue;
    }
    if (marker !== 0xda) {
      pos = next;
      continue;
    }
    // SOS: header, then entropy-coded data up to the next real marker.
    if (!frame) return fail('image data (SOS) before the frame header (SOF)');
    const count = length >= 3 ? buf[body]! : 0;
    if (count < 1 || count > 4 || length !== 6 + 2 * count) return fail('malformed scan header (SOS)');
    scans++;
    pos = skipEntropyData(buf, next);
    if (pos < 0) return fail('truncated: scan data without an EOI marker (FF D9)');
  }
}

/** Offset of the 0xFF that starts the marker ending the scan data at `from`, or -1. */
function skipEntropyData(buf: Buffer, from: number): number {
  let pos = from;
  for (;;) {
    // indexOf is native (memchr-like): scan data holds a 0xFF only every few hundred bytes.
    const ff = buf.indexOf(0xff, pos);
    if (ff < 0 || ff + 1 >= buf.length) return -1;
    const after = buf[ff + 1]!;
    if (after === 0x00 || (after >= 0xd0 && after <= 0xd7)) {
      pos = ff + 2;
      continue;
    }
    if (after === 0xff) {
      // Fill bytes: the marker (if any) comes after the run.
      pos = ff + 1;
      continue;
    }
    return ff;
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}
