/**
 * Splits ffmpeg's decoded video (image2pipe, PPM: `P6\n<width> <height>\n255\n` and then
 * width × height × 3 bytes of RGB) into frames. The relay reads RTSP cameras as pixels rather
 * than JPEGs: ffmpeg then spends nothing on encoding, and the relay cuts, shrinks and samples
 * frames without decoding them; a JPEG is encoded only when a whole frame must travel.
 *
 * Each frame is one allocation of its exact size, filled as pipe chunks arrive (one copy).
 * A header that is not what ffmpeg writes means the stream lost its framing: the splitter
 * says so and the reader reopens the stream instead of guessing where the next frame starts.
 */

export interface RgbFrame {
  rgb: Buffer;
  width: number;
  height: number;
}

export type SplitResult = { frames: RgbFrame[]; error?: string };

/** Longest header ffmpeg writes for a 5-digit size ("P6\n16384 16384\n255\n" is 19 bytes). */
const MAX_HEADER_BYTES = 32;
const HEADER = /^P6\s(\d{1,5})\s(\d{1,5})\s(\d{1,5})\s/;

export class PpmSplitter {
  /** Header bytes so far (a header may straddle chunks). */
  private header = Buffer.alloc(0);
  /** The frame being filled, once its header was read. */
  private frame: RgbFrame | undefined;
  private filled = 0;

  /** `maxPixels` bounds one frame's allocation (a corrupt size must not reserve gigabytes). */
  constructor(private readonly maxPixels = 8192 * 8192) {}

  /** Adds bytes; returns the frames they complete, or why the stream cannot be read on. */
  push(chunk: Buffer): SplitResult {
    const frames: RgbFrame[] = [];
    let data = chunk;
    while (data.length) {
      if (!this.frame) {
        const used = this.readHeader(data);
        if (typeof used === 'string') return { frames, error: used };
        if (used < 0) break;
        data = data.subarray(used);
        continue;
      }
      const take = Math.min(data.length, this.frame.rgb.length - this.filled);
      data.copy(this.frame.rgb, this.filled, 0, take);
      this.filled += take;
      data = data.subarray(take);
      if (this.filled === this.frame.rgb.length) {
        frames.push(this.frame);
        this.frame = undefined;
        this.filled = 0;
      }
    }
    return { frames };
  }

  /**
   * Consumes header bytes from `data`: how many belonged to the header once it is complete
   * (the frame is then allocated), -1 when it needs more bytes, or the reason it is not a header.
   */
  private readHeader(data: Buffer): number | string {
    const before = this.header.length;
    const joined = before ? Buffer.concat([this.header, data.subarray(0, MAX_HEADER_BYTES)]) : data.subarray(0, MAX_HEADER_BYTES);
    const text = joined.toString('latin1');
    if (!'P6'.startsWith(text.slice(0, 2))) return `not a PPM frame (starts with ${JSON.stringify(text.slice(0, 8))})`;
    const m = HEADER.exec(text);
    if (!m) {
      if (joined.length >= MAX_HEADER_BYTES) return `unreadable PPM header ${JSON.stringify(text.slice(0, MAX_HEADER_BYTES))}`;
      this.header = Buffer.from(joined);
      return -1;
    }
    const width = Number(m[1]);
    const height = Number(m[2]);
    if (Number(m[3]) !== 255) return `PPM frame with ${m[3]} levels, expected 255`;
    if (width < 1 || height < 1 || width * height > this.maxPixels) return `PPM frame of ${width}x${height} is outside 1..${this.maxPixels} pixels`;
    this.header = Buffer.alloc(0);
    this.frame = { rgb: Buffer.allocUnsafe(width * height * 3), width, height };
    this.filled = 0;
    return m[0].length - before;
  }
}
