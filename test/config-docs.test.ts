/**
 * The README's "## Configuration" table and the services' env schemas say the same: every
 * documented variable is read by a service with the documented default, every variable a
 * schema reads is documented, and the RELAY_CONFIG file keys named there are the ones the
 * relay reads. Variable names and defaults are a public interface.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TObject } from '@sinclair/typebox';
import { InferEnv } from '@detector-worker/infer/config';
import { RELAY_CONFIG_FILE_KEYS, RelayEnv } from '@detector-worker/relay/config';
import { repoRoot } from '@detector-worker/testkit/fixtures';

const SCHEMAS: Record<'infer' | 'relay', TObject> = { infer: InferEnv, relay: RelayEnv };

interface Row {
  variables: string[];
  fileKeys: string[];
  /** The backticked defaults, in the order of the variables; `infer X, relay Y` gives per-service ones. */
  defaults: string[];
  perService: Partial<Record<'infer' | 'relay', string>>;
}

function configurationRows(): Row[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Configuration\n');
  assert.ok(start >= 0, 'README has a "## Configuration" section');
  const end = readme.indexOf('\n## ', start + 1);
  const rows: Row[] = [];
  for (const line of readme.slice(start, end < 0 ? undefined : end).split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4) continue;
    const variables = [...cells[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
    if (variables.length === 0) continue;
    const fileKeys = [...cells[1]!.matchAll(/`([a-z][a-z0-9_]+)`/g)].map((m) => m[1]!);
    const perService: Row['perService'] = {};
    for (const m of cells[2]!.matchAll(/\b(infer|relay) `([^`]*)`/g)) perService[m[1] as 'infer' | 'relay'] = m[2]!;
    const defaults = Object.keys(perService).length ? [] : [...cells[2]!.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
    rows.push({ variables, fileKeys, defaults, perService });
  }
  return rows;
}

const readers = (name: string) => (Object.keys(SCHEMAS) as Array<'infer' | 'relay'>).filter((s) => Object.hasOwn(SCHEMAS[s].properties, name));
const schemaDefault = (service: 'infer' | 'relay', name: string): string | undefined => {
  const value = (SCHEMAS[service].properties[name] as { default?: unknown }).default;
  return value === undefined ? undefined : String(value);
};

test('every documented variable is read by a service, with the documented default', () => {
  const rows = configurationRows();
  assert.ok(rows.length > 30, 'the configuration table was found and parsed');
  let compared = 0;
  for (const row of rows) {
    row.variables.forEach((name, i) => {
      const services = readers(name);
      assert.ok(services.length > 0, `README documents ${name}, which no service schema reads`);
      for (const service of services) {
        const documented = row.perService[service] ?? (row.defaults.length === row.variables.length ? row.defaults[i] : undefined);
        // Prose defaults ("number of cores", "(none)") are computed or absent in the schema.
        if (documented === undefined || !/^-?[\d.]+$|^[a-z0-9.:/_-]+$/i.test(documented) || documented.startsWith('$')) {
          assert.equal(schemaDefault(service, name), undefined, `${service} ${name}: README gives no literal default, the schema ${schemaDefault(service, name)}`);
          continue;
        }
        assert.equal(schemaDefault(service, name), documented, `${service} ${name}`);
        compared++;
      }
    });
  }
  assert.ok(compared > 30, `only ${compared} literal defaults compared`);
});

test('every variable a schema reads is documented, and the RELAY_CONFIG keys match', () => {
  const rows = configurationRows();
  const documented = new Set(rows.flatMap((r) => r.variables));
  for (const [service, schema] of Object.entries(SCHEMAS)) {
    const undocumented = Object.keys(schema.properties).filter((name) => !documented.has(name));
    assert.deepEqual(undocumented, [], `${service} reads variables the README does not list`);
  }
  const fileKeys = rows.flatMap((r) => r.fileKeys.filter((k) => r.variables.some((v) => v.toLowerCase() === k)));
  assert.deepEqual([...new Set(fileKeys)].sort(), [...RELAY_CONFIG_FILE_KEYS].sort());
});
