/**
 * A gate on an MPEG-TS stream between the camera's demuxer and its decoder, so a quiet camera
 * decodes keyframes only without reopening anything (pure; rtsp-reader.ts wires it).
 *
 * The RTSP connection stays with one ffmpeg that only remuxes (`-c copy -f mpegts`); a second
 * ffmpeg decodes what the gate lets through. In `keyframes` mode the gate passes the PES
 * packets that start with a random-access point (ffmpeg's muxer flags keyframes with the
 * adaptation field's random_access_indicator) and holds back the rest of the current group
 * of pictures. Switching to `all` releases what it holds, so the decoder catches up from the
 * last keyframe at once instead of waiting for the next one; the catch-up is lost only when
 * the held bytes passed their cap, and then the gate waits for the next keyframe.
 *
 * A video PES in MPEG-TS has no length: the decoder's demuxer hands a PES on only when the
 * next one of its PID starts, and its parser knows a picture is complete only when it sees the
 * next picture's first bytes. So the two PES after each keyframe pass too (two cheap pictures,
 * which the rate filter drops): the keyframe is decoded at once instead of a whole group of
 * pictures later, when the next keyframe would have pushed it through.
 *
 * Continuity counters are renumbered per PID on what passes, so the decoder sees a clean
 * stream. Tables (PAT, PMT, SDT) and anything that is not a PES always pass.
 */

const PACKET = 188;
const SYNC = 0x47;

export type GateMode = 'all' | 'keyframes';

/** `closer`: one of the PES right after a keyframe, passed so the keyframe goes through without waiting. */
type PesKind = 'key' | 'closer' | 'delta';

/** PES passed after each keyframe (see above). */
const CLOSERS = 2;

export class TsGate {
  private mode: GateMode = 'all';
  /** Bytes of a packet cut by the chunk boundary. */
  private rest: Buffer | undefined;
  /** Per PID: the kind of the PES its packets currently belong to (absent: tables, or none yet). */
  private readonly kinds = new Map<number, PesKind>();
  /** Per PID: PES started since its last keyframe. */
  private readonly sinceKey = new Map<number, number>();
  /** Per PID: the continuity counter of the last packet passed. */
  private readonly counters = new Map<number, number>();
  /**
   * Runs of packets of the current group of pictures held back in keyframes mode: slices of
   * the chunks they came in (a pipe chunk is a buffer of its own, nothing else writes to it),
   * a run growing while packets arrive back to back, so a quiet camera costs no copy and no
   * object per packet.
   */
  private held: Array<{ data: Buffer; start: number; end: number }> = [];
  private heldBytes = 0;
  /** Set when catching up is impossible: delta packets are dropped until the next keyframe. */
  private needKey = false;

  constructor(private readonly maxHeldBytes = 16 * 1024 * 1024) {}

  get current(): GateMode {
    return this.mode;
  }

  /** Packets passed to the decoder (tests and logs). */
  passed = 0;
  /** Packets kept from the decoder while the camera was quiet. */
  skipped = 0;

  /** Switches mode; switching to `all` returns the held packets the decoder needs first. */
  setMode(mode: GateMode): Buffer[] {
    if (mode === this.mode) return [];
    this.mode = mode;
    if (mode === 'keyframes') return [];
    const out = this.needKey ? [] : this.held.map(({ data, start, end }) => data.subarray(start, end));
    for (const run of out) {
      for (let at = 0; at < run.length; at += PACKET) this.renumber(run.subarray(at, at + PACKET));
      this.passed += run.length / PACKET;
    }
    this.held = [];
    this.heldBytes = 0;
    return out;
  }

  /** Adds demuxer output; returns what goes to the decoder, or why the stream is unreadable. */
  push(chunk: Buffer): { out: Buffer[]; error?: string } {
    let data = chunk;
    if (this.rest) {
      data = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    const out: Buffer[] = [];
    // Runs of passing packets go out as slices of the chunk, no copy (each pipe chunk is a
    // buffer of its own; only what is held back is copied, since it outlives the chunk's turn).
    let runStart = -1;
    const flush = (end: number) => {
      if (runStart >= 0) out.push(data.subarray(runStart, end));
      runStart = -1;
    };
    let at = 0;
    for (; at + PACKET <= data.length; at += PACKET) {
      if (data[at] !== SYNC) {
        flush(at);
        return { out, error: `lost MPEG-TS sync at byte ${at} of a chunk` };
      }
      const pass = this.decide(data, at);
      if (pass) {
        this.renumber(data.subarray(at, at + PACKET));
        this.passed++;
        if (runStart < 0) runStart = at;
      } else flush(at);
    }
    flush(at);
    if (at < data.length) this.rest = Buffer.from(data.subarray(at));
    return { out };
  }

  /** Whether the packet at `at` passes now; holds it back when the camera is quiet. */
  private decide(data: Buffer, at: number): boolean {
    const pid = ((data[at + 1]! & 0x1f) << 8) | data[at + 2]!;
    const startsUnit = (data[at + 1]! & 0x40) !== 0;
    const control = (data[at + 3]! >> 4) & 3;
    if (startsUnit && control & 1) {
      const adaptation = control & 2 ? 1 + data[at + 4]! : 0;
      const payload = at + 4 + adaptation;
      const isPes = payload + 3 <= at + PACKET && data[payload] === 0 && data[payload + 1] === 0 && data[payload + 2] === 1;
      if (!isPes) this.kinds.delete(pid);
      else {
        const randomAccess = adaptation > 1 && (data[at + 5]! & 0x40) !== 0;
        const since = randomAccess ? 0 : (this.sinceKey.get(pid) ?? CLOSERS) + 1;
        this.sinceKey.set(pid, since);
        this.kinds.set(pid, randomAccess ? 'key' : since <= CLOSERS ? 'closer' : 'delta');
        if (randomAccess) {
          // A new group of pictures: what was held belongs to the old one.
          this.held = [];
          this.heldBytes = 0;
          this.needKey = false;
        }
      }
    }
    const kind = this.kinds.get(pid);
    if (kind !== 'delta') return true;
    if (this.mode === 'all') {
      if (!this.needKey) return true;
      this.skipped++;
      return false;
    }
    this.skipped++;
    if (!this.needKey) {
      if (this.heldBytes + PACKET > this.maxHeldBytes) {
        this.needKey = true;
        this.held = [];
        this.heldBytes = 0;
      } else {
        this.hold(data, at);
        this.heldBytes += PACKET;
      }
    }
    return false;
  }

  /** Holds the packet at `at`: extends the last held run when it ends right there in the same buffer. */
  private hold(data: Buffer, at: number): void {
    const last = this.held.at(-1);
    if (last && last.data === data && last.end === at) last.end = at + PACKET;
    else this.held.push({ data, start: at, end: at + PACKET });
  }

  /** Gives a passing packet the next continuity counter of its PID (packets with a payload count). */
  private renumber(packet: Buffer): Buffer {
    if (!((packet[3]! >> 4) & 1)) return packet;
    const pid = ((packet[1]! & 0x1f) << 8) | packet[2]!;
    const next = ((this.counters.get(pid) ?? -1) + 1) & 0x0f;
    this.counters.set(pid, next);
    packet[3] = (packet[3]! & 0xf0) | next;
    return packet;
  }
}
