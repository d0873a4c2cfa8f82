/**
 * Numbers for the state report: CPU and memory as a percentage of the container's cgroup
 * limits when set (Kubernetes), else of the machine; GPU from nvidia-smi when one exists,
 * else null (this relay does no GPU work itself; infer pods report their own).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** cgroup v2 CPU limit in cores, if any. */
function cgroupCpuLimit(): number | undefined {
  const max = read('/sys/fs/cgroup/cpu.max');
  if (!max) return undefined;
  const [quota, period] = max.split(/\s+/);
  if (!quota || quota === 'max' || !period) return undefined;
  return Number(quota) / Number(period);
}

function cgroupCpuUsec(): number | undefined {
  const stat = read('/sys/fs/cgroup/cpu.stat');
  const m = stat ? /usage_usec (\d+)/.exec(stat) : null;
  return m ? Number(m[1]) : undefined;
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

export class SystemUsage {
  private lastMachine = machineCpuTimes();
  private lastCgroup = { usec: cgroupCpuUsec(), at: process.hrtime.bigint() };
  private readonly cpuLimit = cgroupCpuLimit();
  private gpu: { usage: number | null; memory: number | null } = { usage: null, memory: null };
  private gpuProbe = true;

  cpuPercent(): number {
    if (this.cpuLimit !== undefined && this.lastCgroup.usec !== undefined) {
      const usec = cgroupCpuUsec() ?? this.lastCgroup.usec;
      const now = process.hrtime.bigint();
      const elapsedUsec = Number(now - this.lastCgroup.at) / 1000;
      const pct = elapsedUsec > 0 ? ((usec - this.lastCgroup.usec) / elapsedUsec / this.cpuLimit) * 100 : 0;
      this.lastCgroup = { usec, at: now };
      return round(Math.min(100, Math.max(0, pct)));
    }
    const now = machineCpuTimes();
    const busy = now.busy - this.lastMachine.busy;
    const total = now.total - this.lastMachine.total;
    this.lastMachine = now;
    return round(total > 0 ? (busy / total) * 100 : 0);
  }

  memoryPercent(): number {
    const current = Number(read('/sys/fs/cgroup/memory.current'));
    const max = read('/sys/fs/cgroup/memory.max');
    if (Number.isFinite(current) && current > 0 && max && max !== 'max' && Number(max) > 0) return round((current / Number(max)) * 100);
    return round(((totalmem() - freemem()) / totalmem()) * 100);
  }

  gpuUsage(): { usage: number | null; memory: number | null } {
    if (this.gpuProbe) this.refreshGpu();
    return this.gpu;
  }

  private refreshGpu(): void {
    execFile('nvidia-smi', ['--query-gpu=utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 2000 }, (err, out) => {
      if (err) {
        // No GPU (or no driver): stop asking.
        this.gpuProbe = false;
        this.gpu = { usage: null, memory: null };
        return;
      }
      const rows = out.trim().split('\n').map((l) => l.split(',').map((v) => Number(v.trim())));
      if (!rows.length || rows.some((r) => r.length < 3 || r.some((v) => !Number.isFinite(v)))) return;
      const usage = rows.reduce((s, r) => s + r[0]!, 0) / rows.length;
      const used = rows.reduce((s, r) => s + r[1]!, 0);
      const total = rows.reduce((s, r) => s + r[2]!, 0);
      this.gpu = { usage: round(usage), memory: total > 0 ? round((used / total) * 100) : null };
    });
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
