/**
 * Fusing a visit's full runs: per attribute, the value with the highest summed confidence
 * over the runs wins, so one bad frame ("brown" once between two "gray") does not decide.
 */

export interface AttributeRead {
  value: string;
  confidence: number;
}

/** attribute -> value -> summed confidence. */
export type AttributeVotes = Map<string, Map<string, number>>;

export function addReads(votes: AttributeVotes, reads: Readonly<Record<string, AttributeRead>>): void {
  for (const [field, read] of Object.entries(reads)) {
    if (!read.value || !Number.isFinite(read.confidence)) continue;
    const byValue = votes.get(field) ?? new Map<string, number>();
    byValue.set(read.value, (byValue.get(read.value) ?? 0) + Math.max(0, read.confidence));
    votes.set(field, byValue);
  }
}

/** The winning value per attribute, with its share of the attribute's summed confidence. */
export function fused(votes: AttributeVotes): Record<string, AttributeRead> {
  const out: Record<string, AttributeRead> = {};
  for (const [field, byValue] of votes) {
    let best = '';
    let bestSum = -Infinity;
    let total = 0;
    for (const [value, sum] of byValue) {
      total += sum;
      if (sum > bestSum) {
        best = value;
        bestSum = sum;
      }
    }
    if (best) out[field] = { value: best, confidence: total > 0 ? bestSum / total : 0 };
  }
  return out;
}

/** Attributes whose fused value differs between two fusions (for patchSession). */
export function changedValues(before: Readonly<Record<string, AttributeRead>>, after: Readonly<Record<string, AttributeRead>>): string[] {
  return Object.keys(after).filter((k) => before[k]?.value !== after[k]!.value);
}
