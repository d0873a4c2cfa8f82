/**
 * Numbers for the state report.
 * - CPU and memory: a percentage of the container's cgroup limits when it has any (cgroup v2,
 *   or v1 on older hosts), else of the machine. Memory counts the working set (usage minus
 *   reclaimable inactive file cache), as the kubelet does, so a page cache does not read as
 *   pressure.
 * - GPU: from `nvidia-smi` when it exists (mean utilisation and memory of all GPUs), else
 *   null. The relay does no GPU work itself; on a GPU node this shows the node's load.
 *   nvidia-smi runs in the background, so a report carries the previous probe's values.
 * Samples are cached briefly: several CMS connections asking at once share one reading
 * instead of measuring CPU over a few microseconds.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, freemem, totalmem } from 'node:os';

export interface CgroupLimits {
  version: 1 | 2;
  /** CPU limit in cores; undefined when unlimited. */
  cpuCores: number | undefined;
  /** Cumulative CPU time of the cgroup in microseconds, when readable. */
  cpuUsageUsec: number | undefined;
  /** Memory limit in bytes; undefined when unlimited. */
  memoryLimit: number | undefined;
  /** Working set in bytes, when readable. */
  memoryUsed: number | undefined;
}

function readIn(root: string, ...paths: string[]): string | undefined {
  for (const p of paths) {
    try {
      return readFileSync(join(root, p), 'utf8').trim();
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function statField(stat: string | undefined, key: string): number | undefined {
  const m = stat ? new RegExp(`^${key} (\\d+)$`, 'm').exec(stat) : null;
  return m ? Number(m[1]) : undefined;
}

/** v1 writes "no limit" as a huge number (page-rounded 2^63); anything beyond the machine is none. */
function realLimit(bytes: number | undefined, machineBytes: number): number | undefined {
  return bytes !== undefined && bytes > 0 && bytes < machineBytes ? bytes : undefined;
}

/**
 * Reads the limits and usage of the cgroup mounted at `root` (the container's own, inside a
 * cgroup namespace). Pure apart from reading files, so tests can point it at a fake tree.
 */
export function readCgroup(root = '/sys/fs/cgroup', machineMemory = totalmem()): CgroupLimits | undefined {
  const v2max = readIn(root, 'cpu.max');
  const v2mem = readIn(root, 'memory.max');
  if (v2max !== undefined || v2mem !== undefined) {
    const [quota, period] = (v2max ?? 'max').split(/\s+/);
    const cores = quota && quota !== 'max' && num(period) ? Number(quota) / Number(period) : undefined;
    const current = num(readIn(root, 'memory.current'));
    const inactive = statField(readIn(root, 'memory.stat'), 'inactive_file') ?? 0;
    return {
      version: 2,
      cpuCores: cores !== undefined && cores > 0 ? cores : undefined,
      cpuUsageUsec: statField(readIn(root, 'cpu.stat'), 'usage_usec'),
      memoryLimit: v2mem === 'max' ? undefined : realLimit(num(v2mem), machineMemory),
      memoryUsed: current !== undefined ? Math.max(0, current - inactive) : undefined,
    };
  }
  const quota = num(readIn(root, 'cpu/cpu.cfs_quota_us', 'cpu,cpuacct/cpu.cfs_quota_us'));
  const period = num(readIn(root, 'cpu/cpu.cfs_period_us', 'cpu,cpuacct/cpu.cfs_period_us'));
  const usageNs = num(readIn(root, 'cpuacct/cpuacct.usage', 'cpu,cpuacct/cpuacct.usage'));
  const limit = num(readIn(root, 'memory/memory.limit_in_bytes'));
  const usage = num(readIn(root, 'memory/memory.usage_in_bytes'));
  if (quota === undefined && limit === undefined) return undefined;
  const inactive = statField(readIn(root, 'memory/memory.stat'), 'total_inactive_file') ?? 0;
  return {
    version: 1,
    cpuCores: quota !== undefined && quota > 0 && period ? quota / period : undefined,
    cpuUsageUsec: usageNs !== undefined ? usageNs / 1000 : undefined,
    memoryLimit: realLimit(limit, machineMemory),
    memoryUsed: usage !== undefined ? Math.max(0, usage - inactive) : undefined,
  };
}

/** `nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(out: string): { usage: number; memory: number | null } | undefined {
  const rows = out
    .trim()
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => l.split(',').map((v) => Number(v.trim())));
  if (!rows.length || rows.some((r) => r.length < 3 || r.some((v) => !Number.isFinite(v)))) return undefined;
  const usage = rows.reduce((s, r) => s + r[0]!, 0) / rows.length;
  const used = rows.reduce((s, r) => s + r[1]!, 0);
  const total = rows.reduce((s, r) => s + r[2]!, 0);
  return { usage: round(usage), memory: total > 0 ? round((used / total) * 100) : null };
}

function machineCpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

export interface SystemUsageOptions {
  cgroupRoot?: string;
  /** Command for GPU numbers; tests point it elsewhere. */
  nvidiaSmi?: string;
  /** Readings younger than this are reused. */
  cacheMs?: number;
}

export class SystemUsage {
  private readonly root: string;
  private readonly nvidiaSmi: string;
  private readonly cacheMs: number;
  private lastMachine = machineCpuTimes();
  private lastCgroup: { usec: number; at: bigint } | undefined;
  private cpu: { value: number; at: number } | undefined;
  private gpu: { usage: number | null; memory: number | null } = { usage: null, memory: null };
  private gpuProbe = true;
  private gpuRunning = false;

  constructor(options: SystemUsageOptions = {}) {
    this.root = options.cgroupRoot ?? '/sys/fs/cgroup';
    this.nvidiaSmi = options.nvidiaSmi ?? 'nvidia-smi';
    this.cacheMs = options.cacheMs ?? 500;
    const cg = readCgroup(this.root);
    if (cg?.cpuCores !== undefined && cg.cpuUsageUsec !== undefined) this.lastCgroup = { usec: cg.cpuUsageUsec, at: process.hrtime.bigint() };
  }

  /** CPU busy since the previous reading, in percent of the cgroup's limit or of the machine. */
  cpuPercent(): number {
    if (this.cpu && Date.now() - this.cpu.at < this.cacheMs) return this.cpu.value;
    const value = this.measureCpu();
    this.cpu = { value, at: Date.now() };
    return value;
  }

  private measureCpu(): number {
    const cg = readCgroup(this.root);
    if (cg?.cpuCores !== undefined && cg.cpuUsageUsec !== undefined) {
      const now = process.hrtime.bigint();
      const last = this.lastCgroup ?? { usec: cg.cpuUsageUsec, at: now };
      this.lastCgroup = { usec: cg.cpuUsageUsec, at: now };
      const elapsedUsec = Number(now - last.at) / 1000;
      const pct = elapsedUsec > 0 ? ((cg.cpuUsageUsec - last.usec) / elapsedUsec / cg.cpuCores) * 100 : 0;
      return round(Math.min(100, Math.max(0, pct)));
    }
    const now = machineCpuTimes();
    const busy = now.busy - this.lastMachine.busy;
    const total = now.total - this.lastMachine.total;
    this.lastMachine = now;
    return round(total > 0 ? (busy / total) * 100 : 0);
  }

  memoryPercent(): number {
    const cg = readCgroup(this.root);
    if (cg?.memoryLimit !== undefined && cg.memoryUsed !== undefined) return round(Math.min(100, (cg.memoryUsed / cg.memoryLimit) * 100));
    return round(((totalmem() - freemem()) / totalmem()) * 100);
  }

  gpuUsage(): { usage: number | null; memory: number | null } {
    if (this.gpuProbe && !this.gpuRunning) this.refreshGpu();
    return this.gpu;
  }

  private refreshGpu(): void {
    this.gpuRunning = true;
    execFile(this.nvidiaSmi, ['--query-gpu=utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 2000 }, (err, out) => {
      this.gpuRunning = false;
      if (err) {
        // Missing or failing (no GPU, no driver): stop asking. A slow one (killed at the
        // timeout) is asked again next time.
        if (!err.killed) this.gpuProbe = false;
        this.gpu = { usage: null, memory: null };
        return;
      }
      this.gpu = parseNvidiaSmi(out) ?? { usage: null, memory: null };
    });
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
