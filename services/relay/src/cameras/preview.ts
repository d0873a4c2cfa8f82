/**
 * Frame previews: a small RGB copy of every frame an RTSP camera delivers, scaled by the same
 * ffmpeg that encodes the frame's JPEG (a second output, PPM on its own pipe). The relay's
 * motion thumbnails and detect-stage images are cut from the preview instead of decoding the
 * 1080p JPEG with sharp: ffmpeg scales a decoded picture in under a millisecond, while
 * decoding the JPEG again costs the relay 6-12 ms a frame (Huffman decoding dominates even at
 * 1/8 scale). The JPEG stays the frame: full runs and saved images use it.
 *
 * Pure: PpmSplitter cuts the pipe into images, PreviewPairer matches them to JPEGs by order
 * (both outputs come from one split of the same selected frames, so the k-th preview belongs
 * to the k-th JPEG). Anything that does not fit that (a preview that never comes, a size that
 * does not match) gives frames without previews, never a wrong one.
 */

/** A frame scaled down: interleaved RGB, `width` × `height` × 3 bytes. */
export interface Preview {
  width: number;
  height: number;
  rgb: Buffer;
}

/** Largest preview side accepted from the pipe (a bound on what a broken stream can allocate). */
const MAX_SIDE = 4096;
/** A PPM header is short: magic, width, height, maxval. */
const MAX_HEADER = 64;

/**
 * Splits ffmpeg's PPM image2pipe output (`P6 <w> <h> 255` then w×h×3 bytes per image) into
 * previews. A stream that stops looking like PPM is an error: the caller stops using previews.
 */
export class PpmSplitter {
  private header: Buffer | undefined;
  private image: Preview | undefined;
  private filled = 0;

  /** Adds bytes; returns the images they complete, or why the stream is not PPM. */
  push(chunk: Buffer): { images: Preview[]; error?: string } {
    const images: Preview[] = [];
    let data = chunk;
    while (data.length) {
      if (!this.image) {
        const joined = this.header ? Buffer.concat([this.header, data]) : data;
        this.header = undefined;
        const parsed = parseHeader(joined);
        if (parsed === 'more') {
          if (joined.length > MAX_HEADER) return { images, error: 'PPM header too long' };
          this.header = Buffer.from(joined);
          break;
        }
        if (typeof parsed === 'string') return { images, error: parsed };
        // One buffer per preview, filled as the chunks come: no concat of a list of chunks.
        this.image = { width: parsed.width, height: parsed.height, rgb: Buffer.allocUnsafe(parsed.width * parsed.height * 3) };
        this.filled = 0;
        data = joined.subarray(parsed.length);
        continue;
      }
      const take = Math.min(data.length, this.image.rgb.length - this.filled);
      data.copy(this.image.rgb, this.filled, 0, take);
      this.filled += take;
      data = data.subarray(take);
      if (this.filled === this.image.rgb.length) {
        images.push(this.image);
        this.image = undefined;
      }
    }
    return { images };
  }
}

/** The header at the start of `data`: its size and the image's, 'more' when incomplete, or an error. */
export function parseHeader(data: Buffer): { width: number; height: number; length: number } | 'more' | string {
  if (data.length < 2) return 'more';
  if (data[0] !== 0x50 || data[1] !== 0x36) return 'not a binary PPM (P6)';
  const fields: number[] = [];
  let at = 2;
  while (fields.length < 3) {
    while (at < data.length && isSpace(data[at]!)) at++;
    const start = at;
    while (at < data.length && data[at]! >= 0x30 && data[at]! <= 0x39) at++;
    // A number must end in whitespace (and not run on past a sane length).
    if (at >= data.length) return at - start > 5 ? 'PPM header field too long' : 'more';
    if (at === start || !isSpace(data[at]!)) return 'malformed PPM header';
    fields.push(Number(data.toString('latin1', start, at)));
  }
  const [width, height, maxval] = fields as [number, number, number];
  if (maxval !== 255) return `PPM maxval ${maxval}, not 255`;
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) return `PPM size ${width}x${height} out of bounds`;
  // One whitespace byte separates the header from the pixels.
  return { width, height, length: at + 1 };
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** A JPEG ready to be delivered, with its preview when one matched. */
export interface Paired<J> {
  jpeg: J;
  preview?: Preview;
}

/**
 * Matches JPEGs to previews by their order in the two pipes. A JPEG waits for its preview at
 * most until the next JPEG or the caller's flush (a short timer); one delivered alone makes
 * its preview, when it comes, be dropped, so the order stays right.
 */
export class PreviewPairer<J extends { width: number; height: number }> {
  private jpegs = 0;
  private previews = 0;
  private waiting: { jpeg: J; index: number } | undefined;
  /** Previews that came before their JPEG (a couple at most), with their index. */
  private early: Array<{ preview: Preview; index: number }> = [];

  /** Previews matched, and JPEGs that went alone (tests). */
  paired = 0;
  alone = 0;

  /** A JPEG: returns what is ready now (an earlier JPEG that waited, this one when its preview came first). */
  pushJpeg(jpeg: J): Array<Paired<J>> {
    const out = this.flush();
    const index = this.jpegs++;
    // Early previews of lower index belonged to JPEGs that never came: not this one's.
    while (this.early.length && this.early[0]!.index < index) this.early.shift();
    if (this.early[0]?.index === index) out.push(this.match(jpeg, this.early.shift()!.preview));
    else this.waiting = { jpeg, index };
    return out;
  }

  /** A preview: returns the JPEG it completes, if that one is waiting. */
  pushPreview(preview: Preview): Array<Paired<J>> {
    const index = this.previews++;
    if (this.waiting?.index === index) {
      const { jpeg } = this.waiting;
      this.waiting = undefined;
      return [this.match(jpeg, preview)];
    }
    // Ahead of its JPEG: kept (bounded). Behind (its JPEG went alone): dropped.
    if (index >= this.jpegs) {
      this.early.push({ preview, index });
      if (this.early.length > 2) this.early.shift();
    }
    return [];
  }

  /** Delivers the waiting JPEG without a preview (its preview is late). */
  flush(): Array<Paired<J>> {
    if (!this.waiting) return [];
    const { jpeg } = this.waiting;
    this.waiting = undefined;
    this.alone++;
    return [{ jpeg }];
  }

  /** Whether a JPEG waits for its preview (the caller's flush timer runs meanwhile). */
  get pending(): boolean {
    return this.waiting !== undefined;
  }

  private match(jpeg: J, preview: Preview): Paired<J> {
    // The same picture scaled: the aspect ratios agree within the even-size rounding.
    const aspect = jpeg.width / jpeg.height;
    if (Math.abs(preview.width / preview.height - aspect) > aspect * 0.03) {
      this.alone++;
      return { jpeg };
    }
    this.paired++;
    return { jpeg, preview };
  }
}
