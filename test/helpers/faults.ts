/**
 * What every fault test checks once the fault is over, and the figures it leaves behind:
 * every accepted request ends (done, or failed and charged nothing), none is settled twice,
 * the ledger audit passes. Figures go to test-output/reliability/<name>.json, which
 * `scripts/reliability-report.ts` turns into the table in docs/reliability.md.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { auditLedger, type AuditReport } from '../../src/ledger/audit.js'
import { withAudit } from './database.js'
import { api, sleep } from './harness.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const FIGURES_DIR = path.join(ROOT, 'test-output', 'reliability')

/** The figures one fault test reports about its last run. */
export interface FaultFigures {
  /** File name (without .json) and row key. */
  name: string
  /** The test file. */
  file: string
  /** What the test injects, in a few words. */
  injects: string
  /** Faults injected in the run (kills, flushes, dropped sockets...). */
  faults: number
  /** Requests (or transfers) the broker accepted. */
  accepted: number
  done: number
  failed: number
  /** Requests that never ended within the test's wait (always 0 in a passing run). */
  stuck: number
  /** Generation (or transfer) ledger entries written. */
  settlements: number
  /** Requests (or keys) settled more than once (always 0 in a passing run). */
  doubleSettled: number
  /** 'ok', or 'FAILED: n problem(s)'. */
  audit: string
  /** Anything else worth a column's footnote. */
  notes?: string
  /** ISO time the run finished. */
  ranAt: string
  /** Seconds the run took, for information only: nothing asserts on it. */
  seconds: number
}

export function writeFigures(figures: FaultFigures): void {
  fs.mkdirSync(FIGURES_DIR, { recursive: true })
  fs.writeFileSync(path.join(FIGURES_DIR, `${figures.name}.json`), JSON.stringify(figures, null, 2) + '\n')
}

/** Audits a broker's database (SQLite file or PostgreSQL URL) from outside the broker (read-only, like the CLI). */
export function auditDatabase(database: string): Promise<AuditReport> {
  return withAudit(database, (audit) => auditLedger(audit))
}

/** Generation entries per request id, read from the broker's database. */
export function generationEntries(database: string): Promise<Map<string, number>> {
  return withAudit(database, (audit) => audit.settlementsByRequest())
}

const FINAL = new Set(['done', 'failed', 'cancelled'])

/**
 * Polls GET /v1/generate/:id for every id until each has ended, through broker restarts
 * (a refused connection is just another poll). Returns the final views; the ones that
 * never ended are left out, so the caller can name them.
 */
export async function waitAllEnded(url: string, key: string, ids: readonly string[], timeoutMs: number): Promise<Map<string, any>> {
  const ended = new Map<string, any>()
  const deadline = Date.now() + timeoutMs
  while (ended.size < ids.length && Date.now() < deadline) {
    const open = ids.filter((id) => !ended.has(id))
    // A few at a time: the machine is shared, and the broker is the thing under test.
    for (let i = 0; i < open.length; i += 10) {
      await Promise.all(open.slice(i, i + 10).map(async (id) => {
        try {
          const answer = await api(url, 'GET', `/v1/generate/${id}`, { key })
          if (answer.status === 200 && FINAL.has(answer.body.state)) ended.set(id, answer.body)
        } catch { /* the broker is down or restarting: poll again */ }
      }))
    }
    if (ended.size < ids.length) await sleep(250)
  }
  return ended
}

/** The assertions of a tap test that the outcome check uses. */
interface Tap {
  equal(found: any, wanted: any, ...rest: any[]): unknown
  ok(value: any, ...rest: any[]): unknown
  same(found: any, wanted: any, ...rest: any[]): unknown
}

/**
 * The outcome every request-level fault test asserts: each accepted request ended done, or
 * failed and charged nothing; each done request was settled exactly once for what it
 * records; nothing was settled twice; the audit passes. Returns the figures' counts.
 */
export async function checkOutcome(t: Tap, options: { url: string; key: string; ids: readonly string[]; database: string; timeoutMs?: number }): Promise<Pick<FaultFigures, 'accepted' | 'done' | 'failed' | 'stuck' | 'settlements' | 'doubleSettled' | 'audit'>> {
  const { ids } = options
  const views = await waitAllEnded(options.url, options.key, ids, options.timeoutMs ?? 120_000)
  const stuck = ids.filter((id) => !views.has(id))
  t.same(stuck, [], 'no accepted request is stuck')
  const entries = await generationEntries(options.database)
  let done = 0
  let failed = 0
  let settlements = 0
  let doubleSettled = 0
  for (const id of ids) {
    const view = views.get(id)
    const n = entries.get(id) ?? 0
    settlements += n
    if (n > 1) doubleSettled++
    if (!view) continue
    if (view.state === 'done') {
      done++
      if (n !== 1 || !(view.kudos > 0)) t.ok(false, `request ${id} is done with ${n} settlement(s) and kudos ${view.kudos}`)
    } else if (view.state === 'failed') {
      failed++
      if (n !== 0 || view.kudos) t.ok(false, `request ${id} failed but has ${n} settlement(s) and kudos ${view.kudos}`)
    } else {
      t.ok(false, `request ${id} ended ${view.state}, and nobody cancelled it`)
    }
  }
  t.equal(doubleSettled, 0, 'no request settled twice')
  t.equal(done + failed, ids.length - stuck.length, 'every ended request is done or failed')
  const report = await auditDatabase(options.database)
  t.ok(report.ok, `ledger audit: ${report.problems.slice(0, 10).join('\n') || 'ok'}`)
  return {
    accepted: ids.length, done, failed, stuck: stuck.length, settlements, doubleSettled,
    audit: report.ok ? 'ok' : `FAILED: ${report.problems.length} problem(s)`,
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same fault schedule. */
export function prng(seed: number): { next(): number; int(min: number, max: number): number; pick<T>(items: readonly T[]): T } {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    /** An integer in [min, max], both included. */
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
  }
}
