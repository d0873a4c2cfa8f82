/**
 * `/debug`: a page for people. Every subscription with its latest frame, its crop
 * rectangle and its last detections drawn over it, online state, frames per second, frame
 * age and infer latency; it refreshes itself from `/debug/state`.
 */
import type { FastifyInstance } from 'fastify';
import type { Track } from '../tracking/tracker.js';
import type { SubscriptionRegistry } from '../subscriptions/registry.js';

interface Box {
  class: string;
  confidence: number;
  bbox: [number, number, number, number];
}

/** Detections of an infer result tree, moved from crop pixels to frame pixels. */
/**
 * Track boxes of a tracking group, in full-frame pixels, labelled with their track id: what
 * the tracker holds after the latest detect-stage frame (tentative tracks are drawn too).
 */
export function trackBoxes(tracks: readonly Track[], offset: { x: number; y: number }): Box[] {
  return tracks.map((t) => ({
    class: `#${t.id} ${t.className}${t.state === 'confirmed' ? '' : ` (${t.state})`}`,
    confidence: t.score,
    bbox: [t.box[0] + offset.x, t.box[1] + offset.y, t.box[2] + offset.x, t.box[3] + offset.y],
  }));
}

export function frameBoxes(result: unknown, offset: { x: number; y: number }): Box[] {
  const r = result as { detections?: Array<{ class: string; confidence: number; bbox: number[] }> } | null;
  if (!r || !Array.isArray(r.detections)) return [];
  return r.detections
    .filter((d) => Array.isArray(d.bbox) && d.bbox.length === 4)
    .map((d) => ({ class: String(d.class), confidence: Number(d.confidence), bbox: [d.bbox[0]! + offset.x, d.bbox[1]! + offset.y, d.bbox[2]! + offset.x, d.bbox[3]! + offset.y] }));
}

export function registerDebugPage(app: FastifyInstance, registry: SubscriptionRegistry): void {
  app.get('/debug/state', { logLevel: 'warn' }, async () => ({
    at: new Date().toISOString(),
    subscriptions: registry.list().map((sub) => {
      const reader = registry.readerOf(sub);
      const stats = reader?.stats;
      const now = Date.now();
      // Measured by the reader over its last frames: the same for every viewer, from the first poll.
      const rate = reader ? reader.framesPerSecond(now) : 0;
      const offset = sub.crop ? { x: sub.crop.cropX1, y: sub.crop.cropY1 } : { x: 0, y: 0 };
      return {
        id: sub.id,
        modelId: sub.payload.modelId,
        modelName: sub.payload.modelName,
        online: stats?.online ?? false,
        state: stats?.state ?? 'unknown',
        lastError: stats?.lastError ?? null,
        failures: stats?.failures ?? {},
        retryInMs: stats?.retryInMs ?? 0,
        fps: Math.round(rate * 10) / 10,
        frameAgeMs: stats?.lastFrameAt ? now - stats.lastFrameAt : null,
        inferLatencyMs: sub.group.stats.lastLatencyMs === null ? null : Math.round(sub.group.stats.lastLatencyMs),
        framesSent: sub.group.stats.framesSent,
        framesDropped: sub.group.stats.framesDropped,
        errors: sub.group.stats.errors,
        sessionId: sub.sessionId,
        crop: sub.crop ? [sub.crop.cropX1, sub.crop.cropY1, sub.crop.cropX2, sub.crop.cropY2] : null,
        detection: sub.last?.detection ?? null,
        // A tracking group draws its tracks (with ids) from the latest frame; otherwise the last answer's boxes.
        tracking: sub.group.tracking.enabled !== false,
        boxes: sub.group.tracking.enabled !== false && sub.group.stats.detectRequests > 0 ? trackBoxes(sub.group.tracking.lastTracks, offset) : sub.last ? frameBoxes(sub.last.result, offset) : [],
        visits: sub.group.tracking.summary(),
        visitsStarted: sub.group.stats.visitsStarted,
        lastResultAgeMs: sub.last ? now - sub.last.at : null,
      };
    }),
  }));
  app.get('/debug', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>detector-worker relay</title>
<style>
body{font:14px system-ui,sans-serif;margin:16px;background:#111;color:#eee}
h1{font-size:18px}.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#1c1c1c;border-radius:6px;padding:8px;width:660px}
canvas{width:640px;background:#000;display:block}
.on{color:#4c4}.off{color:#e44}td{padding:1px 8px 1px 0;vertical-align:top}
code{color:#9cf}
</style></head><body>
<h1>detector-worker relay — subscriptions</h1>
<div id="empty">No subscriptions yet. Subscribe through the CMS WebSocket (or <code>npm run cms</code>).</div>
<div class="grid" id="grid"></div>
<script>
const cards = new Map();
function card(id) {
  if (cards.has(id)) return cards.get(id);
  const el = document.createElement('div'); el.className = 'card';
  el.innerHTML = '<div class="title"></div><canvas width="640" height="360"></canvas><table class="info"></table>';
  document.getElementById('grid').appendChild(el);
  const c = { el, img: new Image(), canvas: el.querySelector('canvas'), loaded: false, state: null };
  c.img.onload = () => { c.loaded = true; draw(c); };
  cards.set(id, c); return c;
}
function draw(c) {
  const s = c.state; if (!s) return;
  const cv = c.canvas, ctx = cv.getContext('2d');
  if (c.loaded) { cv.width = c.img.naturalWidth; cv.height = c.img.naturalHeight; ctx.drawImage(c.img, 0, 0); }
  const lw = Math.max(2, cv.width / 320);
  ctx.lineWidth = lw; ctx.font = (lw * 7) + 'px sans-serif';
  if (s.crop) { ctx.setLineDash([lw * 4, lw * 3]); ctx.strokeStyle = '#ff0'; ctx.strokeRect(s.crop[0], s.crop[1], s.crop[2] - s.crop[0], s.crop[3] - s.crop[1]); ctx.setLineDash([]); }
  for (const b of s.boxes) {
    ctx.strokeStyle = '#0f0'; ctx.strokeRect(b.bbox[0], b.bbox[1], b.bbox[2] - b.bbox[0], b.bbox[3] - b.bbox[1]);
    ctx.fillStyle = '#0f0'; ctx.fillText(b.class + ' ' + b.confidence.toFixed(2), b.bbox[0] + lw, Math.max(lw * 8, b.bbox[1] - lw));
  }
}
const esc = (v) => String(v).replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]);
async function refresh() {
  try {
    const state = await (await fetch('debug/state', { cache: 'no-store' })).json();
    document.getElementById('empty').style.display = state.subscriptions.length ? 'none' : 'block';
    const seen = new Set();
    for (const s of state.subscriptions) {
      seen.add(s.id); const c = card(s.id); c.state = s;
      c.el.querySelector('.title').innerHTML = '<b>' + esc(s.id) + '</b> — model ' + esc(s.modelId) + ' ' + esc(s.modelName) + ' — <span class="' + (s.online ? 'on">online' : 'off">offline') + '</span>';
      c.el.querySelector('.info').innerHTML =
        '<tr><td>fps</td><td>' + s.fps + '</td><td>frame age</td><td>' + (s.frameAgeMs ?? '—') + ' ms</td><td>infer latency</td><td>' + (s.inferLatencyMs ?? '—') + ' ms</td></tr>' +
        '<tr><td>sent</td><td>' + s.framesSent + '</td><td>dropped</td><td>' + s.framesDropped + '</td><td>session</td><td>' + esc(s.sessionId ?? '—') + '</td></tr>' +
        '<tr><td colspan="6">detection: <code>' + esc(JSON.stringify(s.detection)) + '</code>' + (s.lastError ? '<br>last error: ' + esc(s.lastError) : '') + '</td></tr>' +
        (s.tracking ? '<tr><td colspan="6">visits now: ' + (s.visits.length ? s.visits.map((v) => '<code>#' + esc(v.trackId) + ' ' + esc(v.className) + ' ' + esc(v.ageSec) + ' s, ' + esc(v.runs) + ' run(s)' + (v.detection ? ' ' + esc(JSON.stringify(v.detection)) : '') + '</code>').join('<br>') : 'none') + ' (' + s.visitsStarted + ' since start)</td></tr>' : '');
      c.img.src = 'camera/' + encodeURIComponent(s.id) + '/image?t=' + Date.now();
      draw(c);
    }
    for (const [id, c] of cards) if (!seen.has(id)) { c.el.remove(); cards.delete(id); }
  } catch (e) { /* relay restarting: try again */ }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>`;
