import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseNvidiaSmi, readCgroup, SystemUsage } from './system-usage.js';

const GiB = 1024 ** 3;

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('cgroup v2: CPU quota in cores, working set against memory.max; "max" is no limit', (t) => {
  const root = tree({
    'cpu.max': '150000 100000\n',
    'cpu.stat': 'usage_usec 5000000\nuser_usec 4000000\n',
    'memory.max': `${2 * GiB}\n`,
    'memory.current': `${GiB}\n`,
    'memory.stat': `anon 100\ninactive_file ${0.5 * GiB}\nactive_file 7\n`,
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.deepEqual(readCgroup(root, 64 * GiB), { version: 2, cpuCores: 1.5, cpuUsageUsec: 5_000_000, memoryLimit: 2 * GiB, memoryUsed: 0.5 * GiB });
  const usage = new SystemUsage({ cgroupRoot: root, nvidiaSmi: 'no-such-nvidia-smi' });
  assert.equal(usage.memoryPercent(), 25);

  const open = tree({ 'cpu.max': 'max 100000\n', 'memory.max': 'max\n', 'memory.current': '5\n' });
  t.after(() => rmSync(open, { recursive: true, force: true }));
  const c = readCgroup(open, 64 * GiB)!;
  assert.equal(c.cpuCores, undefined);
  assert.equal(c.memoryLimit, undefined);
});

test('cgroup v1: CFS quota, cpuacct in ns, the "unlimited" huge limit is no limit', (t) => {
  const root = tree({
    'cpu/cpu.cfs_quota_us': '200000\n',
    'cpu/cpu.cfs_period_us': '100000\n',
    'cpuacct/cpuacct.usage': '3000000000\n',
    'memory/memory.limit_in_bytes': `${4 * GiB}\n`,
    'memory/memory.usage_in_bytes': `${3 * GiB}\n`,
    'memory/memory.stat': `inactive_file 1\ntotal_inactive_file ${GiB}\n`,
  });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.deepEqual(readCgroup(root, 64 * GiB), { version: 1, cpuCores: 2, cpuUsageUsec: 3_000_000, memoryLimit: 4 * GiB, memoryUsed: 2 * GiB });
  assert.equal(new SystemUsage({ cgroupRoot: root, nvidiaSmi: 'no-such-nvidia-smi' }).memoryPercent(), 50);

  const unlimited = tree({ 'cpu,cpuacct/cpu.cfs_quota_us': '-1\n', 'cpu,cpuacct/cpu.cfs_period_us': '100000\n', 'memory/memory.limit_in_bytes': '9223372036854771712\n' });
  t.after(() => rmSync(unlimited, { recursive: true, force: true }));
  const u = readCgroup(unlimited, 64 * GiB)!;
  assert.equal(u.cpuCores, undefined);
  assert.equal(u.memoryLimit, undefined);
  assert.equal(readCgroup(join(unlimited, 'nothing-here')), undefined, 'no cgroup files: the machine is used');
});

test('without limits the machine is measured; readings are percentages', () => {
  const usage = new SystemUsage({ cgroupRoot: join(tmpdir(), 'no-cgroup-here'), nvidiaSmi: 'no-such-nvidia-smi', cacheMs: 0 });
  for (const v of [usage.cpuPercent(), usage.memoryPercent()]) assert.ok(v >= 0 && v <= 100, String(v));
});

test('nvidia-smi output: mean utilisation, memory used over total across GPUs; garbage is no reading', () => {
  assert.deepEqual(parseNvidiaSmi('35, 20000, 81559\n'), { usage: 35, memory: 24.5 });
  assert.deepEqual(parseNvidiaSmi('10, 1000, 10000\n30, 3000, 10000\n'), { usage: 20, memory: 20 });
  assert.equal(parseNvidiaSmi('[N/A], 10, 100'), undefined);
  assert.equal(parseNvidiaSmi(''), undefined);
});

test('GPU fields come from nvidia-smi when it runs, and are null without it', async (t) => {
  const none = new SystemUsage({ nvidiaSmi: 'no-such-nvidia-smi' });
  assert.deepEqual(none.gpuUsage(), { usage: null, memory: null });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(none.gpuUsage(), { usage: null, memory: null });

  // A stand-in nvidia-smi that answers the query the way the real one does.
  const dir = mkdtempSync(join(tmpdir(), 'nvidia-smi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'nvidia-smi');
  writeFileSync(script, '#!/bin/sh\ncase "$1" in --query-gpu=utilization.gpu,memory.used,memory.total) echo "60, 5000, 20000";; *) exit 9;; esac\n', { mode: 0o755 });
  const gpu = new SystemUsage({ nvidiaSmi: script });
  gpu.gpuUsage();
  for (let i = 0; i < 100 && gpu.gpuUsage().usage === null; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(gpu.gpuUsage(), { usage: 60, memory: 25 });
});
