/**
 * What every benchmark scenario shares: the run's mode and sizes, the result record,
 * percentiles, the progress line, and a few timing helpers.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** `full` is the documented run; `quick` is the under-a-minute check; `tiny` only proves the harness works. */
export type Mode = 'full' | 'quick' | 'tiny'

/** One figure of the results table (and of bench-results.json). */
export interface Figure {
  value: number
  unit: string
  /** The raw baseline measured in the same run, in the same unit; null when there is none. */
  baseline: number | null
  /** value / baseline; null without a baseline. */
  ratio: number | null
}

/** Everything a scenario family is handed. */
export interface BenchContext {
  mode: Mode
  /** Redis URL of the bench's private redis-server. */
  redisUrl: string
  /** Scratch folder for this run (databases, the child brokers' data). */
  dir: string
  /** Records a figure under its scenario name. */
  record(name: string, figure: Figure): void
  /** Sets the text of the progress line. */
  progress(text: string): void
  /** Extra node flags for broker child processes (e.g. --cpu-prof). */
  childNodeArgs: string[]
}

/** Picks a size by mode. */
export function size<T>(mode: Mode, full: T, quick: T, tiny: T): T {
  return mode === 'full' ? full : mode === 'quick' ? quick : tiny
}

export function figure(value: number, unit: string, baseline: number | null): Figure {
  const ratio = baseline === null || baseline === 0 || !Number.isFinite(baseline) ? null : value / baseline
  return { value: round(value), unit, baseline: baseline === null ? null : round(baseline), ratio: ratio === null ? null : round(ratio) }
}

/** Four significant digits: enough for a table, and stable JSON. */
export function round(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(value))))
  return Number(value.toFixed(Math.min(digits, 6)))
}

/** Nearest-rank percentile of an unsorted sample (sorted in place). */
export function percentile(sample: number[], p: number): number {
  if (sample.length === 0) return Number.NaN
  sample.sort((a, b) => a - b)
  const rank = Math.min(sample.length - 1, Math.max(0, Math.ceil((p / 100) * sample.length) - 1))
  return sample[rank]
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Rejects after `ms` with a message naming what was awaited. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      await task(items[i], i)
    }
  })
  await Promise.all(lanes)
}

/** Resident set size of a process, in KiB, from /proc/<pid>/status. */
export function rssKb(pid: number | 'self' = 'self'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!match) throw new Error(`no VmRSS for ${pid}`)
  return Number(match[1])
}

/** The soft open-file limit of a process, from /proc/<pid>/limits. */
export function nofileLimit(pid: number | 'self' = 'self'): number {
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8')
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits)
  if (!match) return Number.NaN
  return match[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(match[1])
}

/** The progress line on stderr: rewritten in place on a terminal, one line per change otherwise. */
export function createProgress(stream: NodeJS.WriteStream = process.stderr) {
  const started = performance.now()
  let lastAt = -Infinity
  return {
    /** At most ten updates a second on a terminal, one a second into a file or pipe. */
    set(text: string) {
      const now = performance.now()
      if (now - lastAt < (stream.isTTY ? 100 : 1000)) return
      lastAt = now
      const line = `[bench ${((now - started) / 1000).toFixed(1).padStart(5)} s] ${text}`
      stream.write(stream.isTTY ? `\r\x1b[2K${line}` : `${line}\n`)
    },
    done() {
      if (stream.isTTY) stream.write('\r\x1b[2K')
    },
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}
