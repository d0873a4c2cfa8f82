/**
 * The Redis actions: `redis_save_image` (an encoded crop or frame under a templated key, with
 * an expiry) and `redis_publish` (a templated message on a templated channel). Image saves are
 * not queued when Redis is down (large, and only useful fresh): they count as dropped.
 */
import type { RedisPublishAction, RedisSaveImageAction } from '@detector-worker/shared/pipeline/schema';
import { isJsonTemplate, renderTemplate, type RenderResult, type TemplateLookup } from '@detector-worker/shared/templates';
import { findRegion } from '../pipeline/tree.js';
import type { ActionEvent } from '../pipeline/types.js';
import { eventLookup, noServer, type ActionDeps } from './action-deps.js';
import type { OutcomeBody } from './write-policy.js';

/** A Redis key or channel: rendered as text, non-empty, bounded. */
function renderName(template: string, lookup: TemplateLookup, what: string, maxLength: number): { name: string } | { problem: string } {
  const { text } = renderTemplate(template, lookup, { json: false });
  if (!text) return { problem: `${what} template ${JSON.stringify(template)} rendered empty` };
  if (text.length > maxLength) return { problem: `${what} is ${text.length} characters, over the limit of ${maxLength}` };
  return { name: text };
}

export async function saveImage(action: RedisSaveImageAction, event: ActionEvent, deps: ActionDeps): Promise<OutcomeBody> {
  const conn = deps.servers.of(event.pipelineKey)?.redis;
  if (!conn) return noServer('redis');
  const key = renderName(action.key, eventLookup(event), 'key', deps.maxKeyLength);
  if ('problem' in key) return { status: 'failed', reason: key.problem };
  // Missing or absent region: the whole frame, as the original did.
  const region = action.region ? findRegion(event.regions, action.region) : undefined;
  let client;
  try {
    client = await conn.ready();
  } catch (err) {
    deps.counters.bump('redis_save_image', 'dropped');
    return { status: 'failed', reason: `image not saved, redis unavailable: ${conn.describe(err)}`, target: key.name };
  }
  const bytes = await event.image.encode(region?.bbox, action.format ?? 'jpeg', action.quality ?? 90);
  try {
    if (action.expire_seconds !== undefined) await client.set(key.name, bytes, 'EX', action.expire_seconds);
    else await client.set(key.name, bytes);
  } catch (err) {
    deps.counters.bump('redis_save_image', 'dropped');
    return { status: 'failed', reason: `image not saved: ${conn.describe(err)}`, target: key.name };
  }
  // A publish after the save can name the image by {image_key}.
  event.context.image_key = key.name;
  return { status: 'ok', target: key.name };
}

export async function publish(action: RedisPublishAction, event: ActionEvent, deps: ActionDeps): Promise<OutcomeBody> {
  const conn = deps.servers.of(event.pipelineKey)?.redis;
  if (!conn) return noServer('redis');
  const lookup = eventLookup(event);
  const channel = renderName(action.channel, lookup, 'channel', deps.maxKeyLength);
  if ('problem' in channel) return { status: 'failed', reason: channel.problem };
  const message = renderMessage(action.message, lookup).text;
  return deps.writes.write(conn, {
    type: 'redis_publish',
    node: event.node.modelId,
    target: channel.name,
    run: async () => {
      const client = await conn.ready();
      await client.publish(channel.name, message);
    },
  });
}

/**
 * A publish message: JSON-aware rendering when the template is JSON (values escaped, so a
 * quote in a class name cannot break it). A template that only looks like JSON (`{a}-{b}`)
 * does not parse after JSON rendering; it is plain text and rendered as such.
 */
export function renderMessage(template: string, lookup: TemplateLookup): RenderResult {
  if (isJsonTemplate(template)) {
    const r = renderTemplate(template, lookup, { json: true });
    try {
      JSON.parse(r.text);
      return r;
    } catch {
      /* not JSON after all */
    }
  }
  return renderTemplate(template, lookup, { json: false });
}
