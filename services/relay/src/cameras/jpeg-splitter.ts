/**
 * Splits a byte stream of concatenated JPEGs (ffmpeg's image2pipe MJPEG output) into whole
 * images by their SOI (FFD8) and EOI (FFD9) markers. Entropy-coded data byte-stuffs 0xFF,
 * so FFD9 only appears at the end of an image. Bounded: garbage without markers is dropped.
 * A 1080p frame arrives in several pipe chunks: each chunk is searched once, and the frame's
 * chunks are joined once, when its EOI arrives.
 */
export class JpegSplitter {
  /** Chunks of the frame being received (the first starts with SOI); empty between frames. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** Last byte received inside the frame: an EOI may be split across two chunks. */
  private lastByte = 0;
  /** Between frames, a trailing 0xFF that may be the first half of an SOI. */
  private carry: Buffer | undefined;

  constructor(private readonly maxFrameBytes = 32 * 1024 * 1024) {}

  /** Adds bytes; returns the images completed by them (usually 0 or 1). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = chunk;
    while (data.length) {
      if (this.chunks.length === 0) {
        const joined = this.carry ? Buffer.concat([this.carry, data]) : data;
        this.carry = undefined;
        const start = joined.indexOf(SOI);
        if (start < 0) {
          if (joined[joined.length - 1] === 0xff) this.carry = joined.subarray(joined.length - 1);
          break;
        }
        this.chunks.push(joined.subarray(start, start + 2));
        this.size = 2;
        this.lastByte = 0xd8;
        data = joined.subarray(start + 2);
        continue;
      }
      // Index of the EOI's D9 byte in `data` (-1: the frame goes on).
      let end: number;
      if (this.lastByte === 0xff && data[0] === 0xd9) end = 0;
      else {
        const at = data.indexOf(EOI);
        end = at < 0 ? -1 : at + 1;
      }
      if (end < 0) {
        this.chunks.push(data);
        this.size += data.length;
        this.lastByte = data[data.length - 1]!;
        if (this.size > this.maxFrameBytes) this.reset();
        break;
      }
      this.chunks.push(data.subarray(0, end + 1));
      // One copy per frame: the image must not keep the pipe chunks alive.
      out.push(Buffer.concat(this.chunks, this.size + end + 1));
      this.reset();
      data = data.subarray(end + 1);
    }
    return out;
  }

  private reset(): void {
    this.chunks = [];
    this.size = 0;
    this.lastByte = 0;
  }
}

const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);
