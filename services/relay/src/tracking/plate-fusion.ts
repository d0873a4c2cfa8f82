/**
 * Fuses the plate reads of one visit into one plate, so one bad frame does not decide.
 *
 * Frigate groups similar reads by string similarity, takes the largest group and then its
 * most confident read. Here:
 * - reads are normalised (upper case, letters and digits only) before comparing;
 * - reads join a group when their edit distance to one of its reads is small (1, or 2 from
 *   6 characters on: a visit is one vehicle, so a stray read is usually another plate
 *   altogether), so `DR68651`, `DR6865I` and `0R6865I` are one plate;
 * - the winning group is the one with the most summed confidence, not the most reads, so
 *   three weak misreads do not outvote two sure reads;
 * - inside it, each character position is voted by confidence among the reads of the
 *   group's usual length, which can recover a plate that no single read got right
 *   (`0R68651` + `DR6865I` + `DR68651`-like reads agree per position).
 * Pure: the relay calls it with a visit's reads after every full run.
 */

export interface PlateRead {
  text: string;
  confidence: number;
}

export interface FusedPlate {
  text: string;
  /** Agreement (the group's share of all confidence) times the group's mean confidence. */
  confidence: number;
  /** Reads in the winning group. */
  support: number;
}

/** Reads kept per visit at most; older ones beyond this are ignored by the caller's order. */
export const MAX_FUSED_READS = 200;
const MAX_PLATE_LENGTH = 16;

export function normalisePlate(text: string): string {
  return text
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, MAX_PLATE_LENGTH);
}

/** Levenshtein distance (insert, delete, substitute cost 1). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Edits two reads of one plate may differ by. */
function tolerance(a: string, b: string): number {
  return Math.max(a.length, b.length) >= 6 ? 2 : 1;
}

interface Group {
  reads: PlateRead[];
  weight: number;
}

/** The fused plate of a visit's reads, or null when none has a character. */
export function fusePlates(reads: readonly PlateRead[]): FusedPlate | null {
  const clean = reads
    .slice(-MAX_FUSED_READS)
    .map((r) => ({ text: normalisePlate(r.text), confidence: Number.isFinite(r.confidence) ? Math.min(1, Math.max(0, r.confidence)) : 0 }))
    .filter((r) => r.text.length > 0)
    .sort((a, b) => b.confidence - a.confidence);
  if (!clean.length) return null;

  // Strongest reads first, so the groups form around the surest reads.
  const groups: Group[] = [];
  for (const read of clean) {
    const home = groups.find((g) => g.reads.some((r) => editDistance(r.text, read.text) <= tolerance(r.text, read.text)));
    if (home) {
      home.reads.push(read);
      home.weight += read.confidence;
    } else groups.push({ reads: [read], weight: read.confidence });
  }
  const best = groups.reduce((a, b) => (b.weight > a.weight || (b.weight === a.weight && b.reads.length > a.reads.length) ? b : a));
  const total = clean.reduce((s, r) => s + r.confidence, 0);
  const mean = best.weight / best.reads.length;
  const agreement = total > 0 ? best.weight / total : 1 / groups.length;
  return { text: voteCharacters(best.reads), confidence: Math.round(agreement * mean * 10000) / 10000, support: best.reads.length };
}

/** Per-position confidence vote among the reads of the group's most weighted length. */
function voteCharacters(reads: readonly PlateRead[]): string {
  const byLength = new Map<number, number>();
  for (const r of reads) byLength.set(r.text.length, (byLength.get(r.text.length) ?? 0) + r.confidence);
  const length = [...byLength.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const same = reads.filter((r) => r.text.length === length);
  // A single read of that length (or all weightless) has nothing to vote with.
  if (same.length < 2) return same[0]!.text;
  let out = '';
  for (let i = 0; i < length; i++) {
    const votes = new Map<string, number>();
    for (const r of same) votes.set(r.text[i]!, (votes.get(r.text[i]!) ?? 0) + r.confidence + 1e-9);
    out += [...votes.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  }
  return out;
}
