/**
 * The error catalogues and the documentation say the same: every code a client can get from
 * infer is a row of the README's "### Errors" table with its status, and every code in that
 * table exists; the relay's HTTP codes are named in "## The relay"; start-up codes in
 * "## Configuration"; the mpta tool's codes in docs/mpta-tool.md.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { INFER_ERRORS } from '@detector-worker/infer/error-codes';
import { RELAY_ERRORS } from '@detector-worker/relay/error-codes';
import type { ErrorSpec, ErrorSurface } from '@detector-worker/shared/errors';
import { repoRoot } from '@detector-worker/testkit/fixtures';

/**
 * Codes raised today that the docs do not list yet (the README and docs/ are edited by the
 * lead). Remove a code from here once its row is written; the test fails on a stale entry.
 */
const KNOWN_UNDOCUMENTED = new Set<string>([]);

/** The same for the relay's HTTP codes, to name in README "## The relay" (the HTTP bullet). */
const RELAY_KNOWN_UNDOCUMENTED = new Set<string>([]);

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const mptaDoc = readFileSync(join(repoRoot, 'docs', 'mpta-tool.md'), 'utf8');

/** The text from a heading line to the next heading of the same or a higher level. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  assert.ok(start >= 0, `README has a "${heading}" heading`);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(' ') <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** Code -> statuses of the error table: `| 502 / 504 | \`A\` / \`B\` | when |`. */
function errorTable(): Map<string, number[]> {
  const table = new Map<string, number[]>();
  for (const line of section(readme, '### Errors').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !/^\d{3}/.test(cells[1]!)) continue;
    const statuses = [...cells[1]!.matchAll(/\d{3}/g)].map((m) => Number(m[0]));
    for (const m of cells[2]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) table.set(m[1]!, [...(table.get(m[1]!) ?? []), ...statuses]);
  }
  return table;
}

const catalogue: Array<[string, ErrorSpec]> = Object.entries(INFER_ERRORS);
const bySurface = (surface: ErrorSurface): string[] => catalogue.filter(([, spec]) => spec.surface === surface).map(([code]) => code);

test('every code in the README error table exists in the infer catalogue, with a status it can have', () => {
  const table = errorTable();
  assert.ok(table.size > 10, 'the error table was found and parsed');
  for (const [code, statuses] of table) {
    const spec = (INFER_ERRORS as Record<string, ErrorSpec | undefined>)[code];
    assert.ok(spec, `README documents ${code}, which the infer catalogue lacks`);
    assert.equal(spec.surface, 'http', `${code} is in the HTTP error table`);
    const possible = [spec.status, ...(spec.otherStatuses ?? [])];
    assert.ok(possible.some((s) => statuses.includes(s)), `${code}: README says ${statuses.join('/')}, the catalogue ${possible.join('/')}`);
  }
});

test('every HTTP code of the infer catalogue is in the README error table', () => {
  const table = errorTable();
  const missing = bySurface('http').filter((code) => !table.has(code) && !KNOWN_UNDOCUMENTED.has(code));
  assert.deepEqual(missing, [], 'add README "### Errors" rows for these');
});

test('start-up codes are named in the README configuration section, mpta codes in docs/mpta-tool.md', () => {
  const configuration = section(readme, '## Configuration');
  const missing = [
    ...bySurface('start').filter((code) => !configuration.includes(`\`${code}\``)),
    ...bySurface('cli').filter((code) => !mptaDoc.includes(`\`${code}\``)),
  ].filter((code) => !KNOWN_UNDOCUMENTED.has(code));
  assert.deepEqual(missing, []);
});

test('the known-undocumented list holds only catalogued codes that are still undocumented', () => {
  const table = errorTable();
  const configuration = section(readme, '## Configuration');
  for (const code of KNOWN_UNDOCUMENTED) {
    const spec = (INFER_ERRORS as Record<string, ErrorSpec | undefined>)[code];
    assert.ok(spec, `${code} is not catalogued: drop it from KNOWN_UNDOCUMENTED`);
    const documented = spec.surface === 'http' ? table.has(code) : spec.surface === 'start' ? configuration.includes(`\`${code}\``) : mptaDoc.includes(`\`${code}\``);
    assert.ok(!documented, `${code} is documented now: drop it from KNOWN_UNDOCUMENTED`);
  }
});

test('the relay catalogue: its HTTP codes named in the README relay section, shared codes the same as infer\'s', () => {
  const relaySection = section(readme, '## The relay (what the CMS connects to)');
  const relay: Array<[string, ErrorSpec]> = Object.entries(RELAY_ERRORS);
  const missing = relay.filter(([code, spec]) => spec.surface === 'http' && !relaySection.includes(`\`${code}\``) && !RELAY_KNOWN_UNDOCUMENTED.has(code)).map(([code]) => code);
  assert.deepEqual(missing, [], 'name these in README "## The relay"');
  for (const code of RELAY_KNOWN_UNDOCUMENTED) {
    assert.ok(Object.hasOwn(RELAY_ERRORS, code), `${code} is not in the relay catalogue: drop it from RELAY_KNOWN_UNDOCUMENTED`);
    assert.ok(!relaySection.includes(`\`${code}\``), `${code} is documented now: drop it from RELAY_KNOWN_UNDOCUMENTED`);
  }
  // A code both services use means the same thing and carries the same status.
  for (const [code, spec] of relay) {
    const inInfer = (INFER_ERRORS as Record<string, ErrorSpec | undefined>)[code];
    if (inInfer) assert.equal(spec.status, inInfer.status, code);
  }
});
