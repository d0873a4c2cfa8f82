/** Runs test/curl-api.sh (every infer route driven with curl) inside the test suite. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@detector-worker/testkit/fixtures';

test('infer API driven with curl', async (t) => {
  const script = join(repoRoot, 'test', 'curl-api.sh');
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (out.includes('SKIP:')) return t.skip(out.trim());
  assert.equal(code, 0, out);
});
