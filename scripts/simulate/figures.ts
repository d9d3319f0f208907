/**
 * The report's figures, computed only from what the broker recorded: request rows (created and
 * finished times, payer, worker, tokens, kudos) and ledger postings. A wait is the stored
 * `finishedAt - createdAt` (queue time plus generation); a request still waiting at the end
 * counts to the moment the figures were read.
 */
import { UNFUNDED_ID } from '../../src/economy/anonymous.js'
import type { RunRecord } from './run.js'
import type { Scenario } from './scenario.js'

export interface ClassFigures {
  requests: number
  done: number
  /** Still waiting when the run ended (starved or merely late). */
  unfinished: number
  refused: number
  waitP50: number
  waitP95: number
  /** Longest wait, seconds: starvation. */
  waitMax: number
  /** Kudos paid: the sum of the class's `spent` postings (positive number). */
  paid: number
  /** Kudos minted for the class's workers by uptime: its `uptime` postings. */
  minted: number
  /** Kudos earned by the class's workers: its `generation` postings. */
  earned: number
  /** Kudos the class paid past its credit line: `unfunded` postings with the class as counterparty. */
  unfunded: number
  /** Sum of the class's balances at the end, kudos. */
  endBalance: number
}

export interface PolicyFigures {
  policy: string
  /** Bucket starts, seconds since arrivals began. */
  t: number[]
  /** Per class, per bucket (by creation time): p50 and p95 wait, seconds (null: no request). */
  waitP50: Record<string, Array<number | null>>
  waitP95: Record<string, Array<number | null>>
  /** Requests in the broker (accepted, not finished) at each bucket's end. */
  inSystem: number[]
  /** Worker utilisation per bucket, 0..1: stored tokens over capacity (speed × threads × bucket). */
  utilisation: number[]
  /** Kudos minted by uptime per bucket (owners' `uptime` postings). */
  mintedUptime: number[]
  /** Kudos paid per class per bucket (`spent` postings). */
  paid: Record<string, number[]>
  /** Sum of negative balances (debt) per class at each bucket's end, kudos (≤ 0). */
  debt: Record<string, number[]>
  /** Kudos credited to the system account `horde:unfunded` per bucket (payers past their credit line). */
  unfunded: number[]
  classes: Record<string, ClassFigures>
  totals: { requests: number; minted: number; generationPaid: number; generationEarned: number; unfunded: number; auditOk: boolean }
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[index]
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits

export function computeFigures(scenario: Scenario, run: RunRecord): PolicyFigures {
  const width = scenario.bucketSeconds * 1000
  const span = run.endedAt - run.startedAt
  const buckets = Math.max(1, Math.ceil(span / width))
  const t = Array.from({ length: buckets }, (_, i) => (i * width) / 1000)
  const bucketOf = (at: number) => Math.min(buckets - 1, Math.max(0, Math.floor((at - run.startedAt) / width)))
  const classes = scenario.requesters.map((r) => r.name)
  const waitOf = (r: RunRecord['requests'][number]) => ((r.finishedAt ?? run.endedAt) - r.createdAt) / 1000
  const unfundedPostings = run.postings.filter((p) => p.userId === UNFUNDED_ID && p.category === 'unfunded')
  const waitP50: PolicyFigures['waitP50'] = {}
  const waitP95: PolicyFigures['waitP95'] = {}
  const classFigures: Record<string, ClassFigures> = {}
  for (const name of classes) {
    const rows = run.requests.filter((r) => run.classOf[r.userId] === name)
    const perBucket: number[][] = t.map(() => [])
    for (const r of rows) perBucket[bucketOf(r.createdAt)].push(waitOf(r))
    waitP50[name] = perBucket.map((w) => (w.length ? round(quantile(w.sort((a, b) => a - b), 0.5)) : null))
    waitP95[name] = perBucket.map((w) => (w.length ? round(quantile(w, 0.95)) : null))
    const waits = rows.map(waitOf).sort((a, b) => a - b)
    const users = Object.keys(run.classOf).map(Number).filter((id) => run.classOf[id] === name)
    const postings = run.postings.filter((p) => run.classOf[p.userId] === name)
    classFigures[name] = {
      requests: rows.length,
      done: rows.filter((r) => r.state === 'done').length,
      unfinished: rows.filter((r) => r.state === 'waiting').length,
      refused: run.refused[name] ?? 0,
      waitP50: round(quantile(waits, 0.5)),
      waitP95: round(quantile(waits, 0.95)),
      waitMax: round(waits.length ? waits[waits.length - 1] : NaN),
      paid: round(-postings.filter((p) => p.category === 'spent').reduce((sum, p) => sum + p.amount, 0) / 1000),
      minted: round(postings.filter((p) => p.category === 'uptime').reduce((sum, p) => sum + p.amount, 0) / 1000),
      earned: round(postings.filter((p) => p.category === 'generation').reduce((sum, p) => sum + p.amount, 0) / 1000),
      unfunded: round(unfundedPostings.filter((p) => p.counterpartyId !== null && run.classOf[p.counterpartyId] === name).reduce((sum, p) => sum + p.amount, 0) / 1000),
      endBalance: round(users.reduce((sum, id) => sum + run.postings.filter((p) => p.userId === id).reduce((s, p) => s + p.amount, 0), 0) / 1000),
    }
  }
  const inSystem = t.map((_, i) => {
    const end = run.startedAt + (i + 1) * width
    return run.requests.filter((r) => r.createdAt <= end && (r.finishedAt === null || r.finishedAt > end)).length
  })
  const capacity = scenario.workers.reduce((sum, w) => sum + w.tokensPerSecond * w.threads, 0) * scenario.bucketSeconds
  const tokens = t.map(() => 0)
  for (const r of run.requests) if (r.finishedAt !== null && r.tokens) tokens[bucketOf(r.finishedAt)] += r.tokens
  const utilisation = tokens.map((n) => round(Math.min(1, n / capacity)))
  const mintedUptime = t.map(() => 0)
  const unfunded = t.map(() => 0)
  for (const p of unfundedPostings) if (p.createdAt >= run.startedAt) unfunded[bucketOf(p.createdAt)] += p.amount / 1000
  const paid: Record<string, number[]> = Object.fromEntries(classes.map((c) => [c, t.map(() => 0)]))
  for (const p of run.postings) {
    if (p.createdAt < run.startedAt) continue
    if (p.category === 'uptime') mintedUptime[bucketOf(p.createdAt)] += p.amount / 1000
    const cls = run.classOf[p.userId]
    if (p.category === 'spent' && paid[cls]) paid[cls][bucketOf(p.createdAt)] += -p.amount / 1000
  }
  const debt: Record<string, number[]> = {}
  for (const name of classes) {
    const users = Object.keys(run.classOf).map(Number).filter((id) => run.classOf[id] === name)
    debt[name] = t.map((_, i) => {
      const end = run.startedAt + (i + 1) * width
      let sum = 0
      for (const id of users) {
        const balance = run.postings.filter((p) => p.userId === id && p.createdAt <= end).reduce((s, p) => s + p.amount, 0)
        if (balance < 0) sum += balance
      }
      return round(sum / 1000)
    })
  }
  return {
    policy: run.policy, t, waitP50, waitP95, inSystem, utilisation,
    mintedUptime: mintedUptime.map((v) => round(v)),
    paid: Object.fromEntries(Object.entries(paid).map(([c, v]) => [c, v.map((x) => round(x))])),
    debt, unfunded: unfunded.map((v) => round(v)), classes: classFigures,
    totals: {
      requests: run.requests.length,
      minted: round(run.postings.filter((p) => p.category === 'uptime').reduce((s, p) => s + p.amount, 0) / 1000),
      generationPaid: round(-run.postings.filter((p) => p.category === 'spent').reduce((s, p) => s + p.amount, 0) / 1000),
      generationEarned: round(run.postings.filter((p) => p.category === 'generation').reduce((s, p) => s + p.amount, 0) / 1000),
      unfunded: round(unfundedPostings.reduce((s, p) => s + p.amount, 0) / 1000),
      auditOk: run.audit.ok,
    },
  }
}
