/**
 * Splits a byte stream of concatenated JPEGs (ffmpeg's image2pipe MJPEG output) into whole
 * images by their SOI (FFD8) and EOI (FFD9) markers. Entropy-coded data byte-stuffs 0xFF,
 * so FFD9 only appears at the end of an image. Bounded: garbage without markers is dropped.
 */
export class JpegSplitter {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxFrameBytes = 32 * 1024 * 1024) {}

  /** Adds bytes; returns the images completed by them (usually 0 or 1). */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: Buffer[] = [];
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    for (;;) {
      const start = buf.indexOf(SOI);
      if (start < 0) {
        // Keep a trailing 0xFF: it may be the first half of a marker.
        buf = buf.length && buf[buf.length - 1] === 0xff ? buf.subarray(buf.length - 1) : Buffer.alloc(0);
        break;
      }
      const end = buf.indexOf(EOI, start + 2);
      if (end < 0) {
        buf = buf.subarray(start);
        if (buf.length > this.maxFrameBytes) buf = Buffer.alloc(0);
        break;
      }
      out.push(Buffer.from(buf.subarray(start, end + 2)));
      buf = buf.subarray(end + 2);
    }
    this.chunks = buf.length ? [buf] : [];
    this.size = buf.length;
    return out;
  }
}

const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);
