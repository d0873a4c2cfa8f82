import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { looksLikeJpeg, readJpegHeader } from './jpeg-header.js';

const base = (w = 50, h = 30) => sharp({ create: { width: w, height: h, channels: 3, background: '#c83232' } });

/** Offset of the first marker `m` in a marker walk from SOI (segments only, stops at SOS). */
function markerAt(jpeg: Buffer, m: number): number {
  for (let i = 2; i + 4 <= jpeg.length; ) {
    if (jpeg[i + 1] === m) return i;
    if (jpeg[i + 1] === 0xda) break;
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  throw new Error(`no marker ${m.toString(16)}`);
}

test('baseline and progressive JPEGs: size, components and coding as sharp reads them', async () => {
  for (const [w, h] of [[50, 30], [640, 360], [1, 1], [4097, 3]] as const) {
    const baseline = await base(w, h).jpeg().toBuffer();
    assert.deepEqual(readJpegHeader(baseline), { width: w, height: h, components: 3, progressive: false });
    const progressive = await base(w, h).jpeg({ progressive: true }).toBuffer();
    assert.deepEqual(readJpegHeader(progressive), { width: w, height: h, components: 3, progressive: true });
    assert.equal((await sharp(progressive).metadata()).isProgressive, true);
  }
});

test('greyscale and CMYK JPEGs report their component count (the caller leaves them to sharp)', async () => {
  const grey = await base().greyscale().toColourspace('b-w').jpeg().toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  assert.equal(readJpegHeader(grey)?.components, 1);
  const cmyk = await base().toColourspace('cmyk').jpeg().toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  assert.equal(readJpegHeader(cmyk)?.components, 4);
});

test('a header cut anywhere before the end of the scan header answers null', async () => {
  const jpeg = await base().jpeg().toBuffer();
  const sos = markerAt(jpeg, 0xda);
  const headerEnd = sos + 2 + jpeg.readUInt16BE(sos + 2);
  for (let cut = 0; cut < headerEnd; cut++) assert.equal(readJpegHeader(jpeg.subarray(0, cut)), null, `cut at ${cut}`);
  // Entropy-coded data is not read: a cut right after the scan header still has a size.
  assert.equal(readJpegHeader(jpeg.subarray(0, headerEnd))?.width, 50);
});

test('a huge declared size is read as declared (the caller refuses it before any decode)', async () => {
  const jpeg = Buffer.from(await base().jpeg().toBuffer());
  const sof = markerAt(jpeg, 0xc0);
  jpeg.writeUInt16BE(60000, sof + 5);
  jpeg.writeUInt16BE(65535, sof + 7);
  assert.deepEqual(readJpegHeader(jpeg), { width: 65535, height: 60000, components: 3, progressive: false });
});

test('what the walk does not vouch for answers null: other codings, DNL height, stray bytes, bad lengths', async () => {
  const jpeg = await base().jpeg().toBuffer();
  const sof = markerAt(jpeg, 0xc0);
  const patched = (at: number, bytes: number[]) => {
    const copy = Buffer.from(jpeg);
    bytes.forEach((b, k) => (copy[at + k] = b));
    return copy;
  };
  assert.equal(readJpegHeader(patched(sof + 1, [0xc9])), null, 'arithmetic coding');
  assert.equal(readJpegHeader(patched(sof + 1, [0xc3])), null, 'lossless');
  assert.equal(readJpegHeader(patched(sof + 4, [12])), null, '12-bit samples');
  assert.equal(readJpegHeader(patched(sof + 5, [0, 0])), null, 'height from a DNL marker');
  assert.equal(readJpegHeader(patched(sof + 9, [2])), null, 'two components but a three-component length');
  assert.equal(readJpegHeader(patched(sof + 2, [0, 1])), null, 'segment length under 2');
  assert.equal(readJpegHeader(Buffer.concat([jpeg.subarray(0, sof), Buffer.from([0x00]), jpeg.subarray(sof)])), null, 'stray byte before a marker');
  const twoFrames = Buffer.concat([jpeg.subarray(0, sof), jpeg.subarray(sof, sof + 2 + jpeg.readUInt16BE(sof + 2)), jpeg.subarray(sof)]);
  assert.equal(readJpegHeader(twoFrames), null, 'a second frame header');
  // Fill bytes before a marker are legal.
  assert.equal(readJpegHeader(Buffer.concat([jpeg.subarray(0, sof), Buffer.from([0xff, 0xff]), jpeg.subarray(sof)]))?.width, 50);
  assert.equal(readJpegHeader(Buffer.from('not an image at all')), null);
  assert.equal(readJpegHeader(Buffer.from([0xff, 0xd8, 0xff, 0xd9])), null, 'SOI then EOI');
  assert.equal(looksLikeJpeg(await base().png().toBuffer()), false);
});

test('mutated headers never throw, and a size the walk reports is the size sharp reads', async () => {
  const jpeg = await base(64, 48).jpeg().toBuffer();
  const sos = markerAt(jpeg, 0xda);
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  let agreed = 0;
  for (let k = 0; k < 300; k++) {
    const copy = Buffer.from(jpeg);
    for (let m = 0; m < 1 + (next() % 3); m++) copy[next() % (sos + 14)] = next() & 255;
    const header = readJpegHeader(copy);
    if (!header) continue;
    const meta = await sharp(copy).metadata().catch(() => null);
    if (!meta) continue;
    assert.deepEqual([meta.width, meta.height], [header.width, header.height], `mutation ${k}`);
    agreed++;
  }
  assert.ok(agreed > 50, `${agreed} mutated headers were read by both`);
});
