/**
 * The relay's /debug page in headless Chromium (Debian's chromium driven by playwright-core):
 * it must render a subscription's latest frame with its crop rectangle and detection boxes
 * drawn over it. The test takes a screenshot and checks the drawn pixels.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { pino } from 'pino';
import { loadRelayConfig } from '@detector-worker/relay/config';
import { startRelay, type Relay } from '@detector-worker/relay/server';
import { fixturesRequired, requireService } from '@detector-worker/testkit/fixtures';
import { startStubInfer, type StubInfer } from '@detector-worker/testkit/stub-infer';
import { CmsClient } from './support/cms-client.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let relay: Relay;
let stub: StubInfer;
let snapshots: Server;
let work: string;

before(async () => {
  stub = await startStubInfer();
  // Grey frame 320x240; infer "finds" a car at [10,10,50,50] of the crop starting at (100,60).
  const frame = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#404040' } }).jpeg().toBuffer();
  snapshots = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(frame));
  await new Promise<void>((r) => snapshots.listen(0, '127.0.0.1', r));
  relay = await startRelay({ ...loadRelayConfig({}), host: '127.0.0.1', port: 0, inferUrl: stub.url, heartbeatIntervalMs: 500 }, pino({ level: 'silent' }));
  work = await mkdtemp(join(tmpdir(), 'debug-page-'));
});

after(async () => {
  await relay?.close();
  await stub?.close();
  snapshots?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

test('/debug renders the latest frame with the crop rectangle and detection boxes', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (fixturesRequired()) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (REQUIRE_FIXTURES=1 makes this a failure)`);
    return requireService(t, 'chromium', `${CHROMIUM} not found (apt-get install -y chromium)`);
  }
  const cms = await CmsClient.connect(`ws://127.0.0.1:${relay.port}/`);
  const port = (snapshots.address() as { port: number }).port;
  cms.send({
    type: 'subscribe',
    payload: { subscriptionIdentifier: 'display-1;cam-1', snapshotUrl: `http://127.0.0.1:${port}/s.jpg`, snapshotInterval: 300, modelUrl: 'http://m/x.mpta', modelName: 'Cars', modelId: 1, cropX1: 100, cropY1: 60, cropX2: 300, cropY2: 220 },
  });
  await cms.waitFor((m) => m.type === 'imageDetection', 10_000);

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${relay.url}/debug`);
    // A string expression: it runs in the page, where `document` exists.
    await page.waitForFunction("(() => { const c = document.querySelector('canvas'); return !!c && c.width === 320 && document.body.innerText.includes('online'); })()", undefined, { timeout: 15_000 });
    await page.waitForTimeout(300);
    const text = await page.innerText('body');
    assert.match(text, /display-1;cam-1/);
    assert.match(text, /carBrand/);
    const shot = await page.locator('canvas').screenshot();
    await writeFile(join(work, 'debug.png'), shot);
    const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => {
      const sx = Math.round((x * info.width) / 320);
      const sy = Math.round((y * info.height) / 240);
      const i = (sy * info.width + sx) * 3;
      return [data[i]!, data[i + 1]!, data[i + 2]!];
    };
    // The detection box [10,10,50,50] of the crop sits at [110,70,150,110] of the frame: its left edge is green.
    const edge = px(110, 90);
    assert.ok(edge[1]! > 180 && edge[0]! < 100 && edge[2]! < 100, `green box edge, got ${edge}`);
    // Inside the box is still the grey frame.
    const inside = px(130, 95);
    assert.ok(Math.abs(inside[0]! - 64) < 30 && Math.abs(inside[1]! - 64) < 30, `frame inside the box, got ${inside}`);
    // The crop rectangle is drawn in yellow (dashed): some pixel of its top edge is yellow.
    const top = Array.from({ length: 200 }, (_, i) => px(100 + i, 60));
    assert.ok(top.some(([r, g, b]) => r! > 180 && g! > 180 && b! < 100), 'yellow crop rectangle');
  } finally {
    await browser.close();
    await cms.close();
  }
});
