// Collects every compiled *.test.js of the workspaces and runs them with node:test.
// Runs under the project's pinned Node (process.execPath), with an optional path filter.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = ['shared/dist', 'services/infer/dist', 'services/relay/dist', 'test/dist'];
const filter = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (filter.length === 0 || filter.some((f) => p.includes(f)))) files.push(p);
  }
};
roots.forEach(walk);
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
