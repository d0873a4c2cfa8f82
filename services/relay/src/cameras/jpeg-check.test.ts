import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { checkJpeg } from './jpeg-check.js';

let baseline: Buffer;
let progressive: Buffer;
let grey: Buffer;
let withExif: Buffer;
let noise: Buffer;

before(async () => {
  const raw = Buffer.alloc(96 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  const image = () => sharp(raw, { raw: { width: 96, height: 64, channels: 3 } });
  baseline = await image().jpeg({ quality: 90 }).toBuffer();
  progressive = await image().jpeg({ quality: 90, progressive: true }).toBuffer();
  grey = await image().toColourspace('b-w').jpeg().toBuffer();
  withExif = await image().withMetadata({ exif: { IFD0: { Copyright: 'x' } } }).jpeg().toBuffer();
  noise = await image().jpeg({ quality: 100, mozjpeg: true }).toBuffer();
});

test('valid sharp JPEGs: baseline, progressive, greyscale, with EXIF, mozjpeg', () => {
  for (const [name, jpeg, components, prog] of [
    ['baseline', baseline, 3, false],
    ['progressive', progressive, 3, true],
    ['greyscale', grey, 1, false],
    ['exif', withExif, 3, false],
    ['mozjpeg', noise, 3, true],
  ] as const) {
    const r = checkJpeg(jpeg);
    assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
    assert.equal(r.width, 96, name);
    assert.equal(r.height, 64, name);
    assert.equal(r.components, components, name);
    assert.equal(r.progressive, prog, name);
    assert.equal(r.end, jpeg.length, name);
  }
  const p = checkJpeg(progressive);
  assert.ok(p.ok && p.scans > 1, 'progressive images have several scans');
});

test('restart markers inside the scan data are skipped', async () => {
  // libjpeg's restart interval through a hand-made DRI segment is not exposed by sharp;
  // splice RST markers into a synthetic stream instead: SOI, SOF0, SOS, data RST0 data, EOI.
  const sof = [0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00];
  const dri = [0xff, 0xdd, 0x00, 0x04, 0x00, 0x01];
  const sos = [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00];
  const data = [0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xd1, 0x78, 0xff, 0xff, 0xd9];
  const r = checkJpeg(Buffer.from([0xff, 0xd8, ...dri, ...sof, ...sos, ...data]));
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual([r.width, r.height, r.scans], [16, 16, 1]);
});

test('truncated JPEGs fail, wherever the cut is', () => {
  for (const cut of [3, 10, 100, Math.floor(baseline.length / 2), baseline.length - 2, baseline.length - 1]) {
    const r = checkJpeg(baseline.subarray(0, cut));
    assert.equal(r.ok, false, `cut at ${cut}`);
  }
  const r = checkJpeg(progressive.subarray(0, progressive.length - 2));
  assert.ok(!r.ok && /EOI/.test(r.reason), JSON.stringify(r));
});

test('garbage after FF D8, random bytes, empty input', () => {
  const garbage = Buffer.alloc(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 7) % 256;
  garbage[0] = 0xff;
  garbage[1] = 0xd8;
  garbage[2] = 0x11;
  assert.equal(checkJpeg(garbage).ok, false);
  // FF D8 followed by plausible-looking but meaningless segments and no frame header.
  const noFrame = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xd9]);
  const r = checkJpeg(noFrame);
  assert.ok(!r.ok && /SOF/.test(r.reason), JSON.stringify(r));
  assert.equal(checkJpeg(Buffer.from('hello world, not an image')).ok, false);
  assert.equal(checkJpeg(Buffer.alloc(0)).ok, false);
  assert.equal(checkJpeg(Buffer.from([0xff, 0xd8])).ok, false);
  assert.equal(checkJpeg(Buffer.from([0xff, 0xd8, 0xff, 0xd9])).ok, false, 'SOI EOI alone is no image');
});

test('a missing EOI fails', () => {
  const r = checkJpeg(baseline.subarray(0, baseline.length - 2));
  assert.ok(!r.ok && /EOI/.test(r.reason), JSON.stringify(r));
  // EOI replaced by another byte pair: still no end.
  const copy = Buffer.from(baseline);
  copy[copy.length - 1] = 0x00;
  assert.equal(checkJpeg(copy).ok, false);
});

test('zero or implausible frame header values fail', () => {
  const sofAt = baseline.indexOf(Buffer.from([0xff, 0xc0]));
  assert.ok(sofAt > 0);
  const zeroHeight = Buffer.from(baseline);
  zeroHeight[sofAt + 5] = 0;
  zeroHeight[sofAt + 6] = 0;
  const r = checkJpeg(zeroHeight);
  assert.ok(!r.ok && /zero dimensions/.test(r.reason), JSON.stringify(r));
  const zeroWidth = Buffer.from(baseline);
  zeroWidth[sofAt + 7] = 0;
  zeroWidth[sofAt + 8] = 0;
  assert.equal(checkJpeg(zeroWidth).ok, false);
  const badComponents = Buffer.from(baseline);
  badComponents[sofAt + 9] = 9;
  assert.equal(checkJpeg(badComponents).ok, false);
  const badLength = Buffer.from(baseline);
  badLength[sofAt + 2] = 0xff;
  badLength[sofAt + 3] = 0xff;
  assert.equal(checkJpeg(badLength).ok, false, 'a segment longer than the file');
});

test('trailing bytes after EOI are accepted; end says where the image stops', () => {
  const padded = Buffer.concat([baseline, Buffer.alloc(100, 0), Buffer.from('trailer')]);
  const r = checkJpeg(padded);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.end, baseline.length);
});

test('an EXIF thumbnail with its own EOI does not end the image early', async () => {
  const thumb = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123' } }).jpeg().toBuffer();
  // APP1 segment carrying a whole JPEG (as EXIF thumbnails do).
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (thumb.length + 2) >> 8, (thumb.length + 2) & 0xff]), thumb]);
  const spliced = Buffer.concat([baseline.subarray(0, 2), app1, baseline.subarray(2)]);
  const r = checkJpeg(spliced);
  assert.ok(r.ok && r.width === 96 && r.end === spliced.length, JSON.stringify(r));
  assert.equal(checkJpeg(spliced.subarray(0, 2 + app1.length)).ok, false, 'the thumbnail alone is not the image');
});
