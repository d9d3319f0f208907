/**
 * Balance to queue priority. BullMQ serves lower numbers first (1..2,097,151; 0 would mean
 * "no priority" and jump the whole queue, so it is never used). The map is monotone:
 * more kudos, lower number. It is logarithmic, so it spans debts and fortunes alike, and
 * quantized into buckets of about 0.27% of the balance (256 per doubling): balance changes
 * smaller than a bucket leave waiting requests where they are (FIFO among them).
 */

export const PRIORITY_MIN = 1
export const PRIORITY_MAX = 2_097_151
/** Reserved for a request being claimed by a worker that prefers its owner. */
export const PRIORITY_PREFERRED = 1
const CENTER = 1_048_576
const STEPS_PER_DOUBLING = 256

/** Priority for a balance in milli-kudos. */
export function priorityForBalance(balanceMilli: number): number {
  const kudos = balanceMilli / 1000
  const magnitude = Math.log2(1 + Math.abs(kudos)) * STEPS_PER_DOUBLING
  const offset = Math.sign(kudos) * Math.floor(magnitude)
  return Math.min(Math.max(CENTER - offset, PRIORITY_PREFERRED + 1), PRIORITY_MAX)
}

/** Kudos added for waiting (anti-starvation): `bonusPer10s` for every full 10 s waited. */
export function ageingBonusMilli(waitedMs: number, bonusPer10s: number): number {
  if (bonusPer10s <= 0) return 0
  return Math.floor(waitedMs / 10_000) * bonusPer10s * 1000
}
