/**
 * Fusing a visit's full runs: per attribute, the value with the highest summed confidence
 * over the runs wins, so one bad frame ("brown" once between two "gray") does not decide.
 * The fused confidence is the best single read of the winning value (what a classifier said
 * at its clearest), not a share of the vote.
 */

export interface AttributeRead {
  value: string;
  confidence: number;
}

/** attribute -> value -> summed and best confidence. */
export type AttributeVotes = Map<string, Map<string, { sum: number; best: number }>>;

export function addReads(votes: AttributeVotes, reads: Readonly<Record<string, AttributeRead>>): void {
  for (const [field, read] of Object.entries(reads)) {
    if (!read.value || !Number.isFinite(read.confidence)) continue;
    const byValue = votes.get(field) ?? new Map<string, { sum: number; best: number }>();
    const c = Math.max(0, read.confidence);
    const prior = byValue.get(read.value) ?? { sum: 0, best: 0 };
    byValue.set(read.value, { sum: prior.sum + c, best: Math.max(prior.best, c) });
    votes.set(field, byValue);
  }
}

/** The winning value per attribute, with its best single confidence. */
export function fused(votes: AttributeVotes): Record<string, AttributeRead> {
  const out: Record<string, AttributeRead> = {};
  for (const [field, byValue] of votes) {
    let winner = '';
    let top = { sum: -Infinity, best: 0 };
    for (const [value, v] of byValue) {
      if (v.sum > top.sum) {
        winner = value;
        top = v;
      }
    }
    if (winner) out[field] = { value: winner, confidence: top.best };
  }
  return out;
}

/** Attributes whose fused value differs between two fusions (for patchSession). */
export function changedValues(before: Readonly<Record<string, AttributeRead>>, after: Readonly<Record<string, AttributeRead>>): string[] {
  return Object.keys(after).filter((k) => before[k]?.value !== after[k]!.value);
}
