/**
 * The size of a JPEG read from its frame header in JS. Asking sharp for the metadata costs a
 * libvips round trip on the thread pool (about 0.2 ms idle, near 1 ms inside the server), more
 * than the rest of a small detect frame's bookkeeping; walking the markers takes microseconds.
 *
 * The walk covers what libjpeg's jpeg_read_header reads (every marker up to the first scan), so
 * an image it vouches for is one whose header sharp would have accepted too. It vouches only for
 * the plain case: 8-bit Huffman-coded (baseline, extended or progressive) frames. Anything else
 * (arithmetic coding, lossless, 12-bit, a DNL height, a second frame, stray bytes between
 * markers, a header cut short) answers null and the caller asks sharp, which stays the judge
 * of odd files and of their error messages.
 */

export interface JpegHeader {
  width: number;
  height: number;
  /** 1 greyscale, 3 YCbCr (or RGB), 4 CMYK / YCCK. */
  components: number;
  progressive: boolean;
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
/** Frame markers this reader accepts: baseline, extended sequential and progressive Huffman. */
const HUFFMAN_FRAMES = new Set([0xc0, 0xc1, 0xc2]);
/** Every other SOFn (lossless, hierarchical, arithmetic): left to sharp. DHT (C4), JPG (C8) and DAC (CC) are not frames. */
const OTHER_FRAMES = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** True when the bytes start like a JPEG (SOI then a marker); says nothing about the rest. */
export function looksLikeJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === SOI && bytes[2] === 0xff;
}

/**
 * The frame header of a JPEG whose header this walk fully understands, or null (ask sharp).
 * Bounded by the buffer: every step moves forward at least two bytes.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | null {
  if (!looksLikeJpeg(bytes)) return null;
  const n = bytes.length;
  let frame: JpegHeader | null = null;
  let i = 2;
  while (i + 4 <= n) {
    // Markers must follow each other directly: garbage between segments is a libjpeg warning,
    // which this reader does not try to reproduce.
    if (bytes[i] !== 0xff) return null;
    let m = bytes[i + 1]!;
    // Fill bytes (FF FF ... marker) are legal before any marker.
    while (m === 0xff && i + 2 < n) {
      i++;
      m = bytes[i + 1]!;
    }
    if (m === 0xff || m === 0x00 || m === SOI || m === EOI || (m >= 0xd0 && m <= 0xd7) || m === 0x01) return null;
    if (i + 4 > n) return null;
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    if (length < 2 || i + 2 + length > n) return null;
    const body = i + 4;
    if (HUFFMAN_FRAMES.has(m)) {
      if (frame) return null;
      const components = length >= 8 ? bytes[body + 5]! : 0;
      if (length !== 8 + 3 * components || bytes[body] !== 8) return null;
      if (components !== 1 && components !== 3 && components !== 4) return null;
      const height = (bytes[body + 1]! << 8) | bytes[body + 2]!;
      const width = (bytes[body + 3]! << 8) | bytes[body + 4]!;
      // Height 0 means a DNL marker after the first scan gives it: rare, left to sharp.
      if (!width || !height) return null;
      frame = { width, height, components, progressive: m === 0xc2 };
    } else if (OTHER_FRAMES.has(m)) {
      return null;
    } else if (m === SOS) {
      if (!frame || length < 3) return null;
      const inScan = bytes[body]!;
      if (inScan < 1 || inScan > frame.components || length !== 6 + 2 * inScan) return null;
      // jpeg_read_header stops here; what follows is entropy-coded data.
      return frame;
    }
    i += 2 + length;
  }
  return null;
}
