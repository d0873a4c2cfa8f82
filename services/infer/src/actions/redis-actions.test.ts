import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextLookup, renderTemplate } from '@detector-worker/shared/templates';
import { renderMessage } from './redis-actions.js';

test('templates: JSON messages escape values, keys and look-alikes render as text', async () => {
  const lookup = contextLookup({ class: 'Car "GT"\n', display_id: 'd1', confidence: 0.5, session_id: null });
  const json = renderMessage('{"class":"{class}","c":{confidence},"s":{session_id}}', lookup).text;
  assert.deepEqual(JSON.parse(json), { class: 'Car "GT"\n', c: 0.5, s: null });
  // Starts with "{" but is not JSON once rendered: a plain-text message.
  assert.equal(renderMessage('{display_id}-{confidence}', lookup).text, 'd1-0.5');
  assert.equal(renderTemplate('{display_id}:{class}', lookup, { json: false }).text, 'd1:Car "GT"\n');
  assert.equal(renderTemplate('{display_id}', lookup, { json: true }).text, '"d1"', 'forced JSON mode writes JSON values');
});
