/**
 * `npx tsx scripts/reliability-report.ts [--write docs/reliability.md]`: turns the figures
 * the fault tests (test/faults/*.test.ts) leave in test-output/reliability/*.json into a
 * Markdown table. Prints it; with --write, replaces the part of the file between
 * `<!-- figures:start -->` and `<!-- figures:end -->` with it.
 * Exit codes: 0 written or printed, 1 no figures or a figure reports a failure, 2 usage error.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { FaultFigures } from '../test/helpers/faults.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const FIGURES_DIR = path.join(ROOT, 'test-output', 'reliability')
const START = '<!-- figures:start -->'
const END = '<!-- figures:end -->'
/** Rows in the order of docs/reliability.md; any other figures files follow, by name. */
const ORDER = ['broker-kill', 'broker-kill-after-settle', 'redis-kill', 'lock-lost', 'redis-flush', 'redis-flush-restart', 'worker-drops', 'transfer-retries', 'slow-reader', 'drain', 'drain-deadline']

type Figures = FaultFigures

function load(): Figures[] {
  if (!fs.existsSync(FIGURES_DIR)) return []
  const all = fs.readdirSync(FIGURES_DIR).filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(FIGURES_DIR, f), 'utf8')) as Figures)
  const rank = (name: string) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length)
  return all.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name))
}

function table(rows: Figures[]): string {
  const cell = (value: unknown) => String(value).replaceAll('|', '\\|')
  const lines = [
    '| Test | Faults injected | Accepted | Done | Failed | Stuck | Settlements | Settled twice | Audit | Run (s) | Last run (UTC) |',
    '|---|--:|--:|--:|--:|--:|--:|--:|---|--:|---|',
    ...rows.map((r) => `| \`${cell(r.name)}\` | ${r.faults} | ${r.accepted} | ${r.done} | ${r.failed} | ${r.stuck} | ${r.settlements} | ${r.doubleSettled} | ${cell(r.audit)} | ${r.seconds} | ${r.ranAt.slice(0, 16).replace('T', ' ')} |`),
    '',
    ...rows.map((r) => `- \`${cell(r.name)}\` (${r.file}): ${r.injects}.${r.notes ? ` ${r.notes}.` : ''}`),
  ]
  return lines.join('\n')
}

function main(): void {
  let args: { write?: string; help?: boolean }
  try {
    args = parseArgs({ options: { write: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values
  } catch (error) {
    console.error(`reliability-report: ${(error as Error).message}`)
    process.exit(2)
  }
  if (args.help) {
    console.log('Usage: npx tsx scripts/reliability-report.ts [--write docs/reliability.md]')
    return
  }
  const rows = load()
  if (rows.length === 0) {
    console.error(`reliability-report: no figures in ${FIGURES_DIR}; run the fault tests first (npx tap --disable-coverage test/faults)`)
    process.exit(1)
  }
  const text = table(rows)
  if (args.write) {
    const file = path.resolve(args.write)
    const doc = fs.readFileSync(file, 'utf8')
    const from = doc.indexOf(START)
    const to = doc.indexOf(END)
    if (from < 0 || to < from) {
      console.error(`reliability-report: ${file} has no ${START} ... ${END} section`)
      process.exit(2)
    }
    fs.writeFileSync(file, `${doc.slice(0, from + START.length)}\n${text}\n${doc.slice(to)}`)
    console.log(`reliability-report: ${rows.length} row(s) written to ${path.relative(ROOT, file)}`)
  } else {
    console.log(text)
  }
  const bad = rows.filter((r) => r.audit !== 'ok' || r.stuck > 0 || r.doubleSettled > 0)
  if (bad.length > 0) {
    console.error(`reliability-report: failures in ${bad.map((r) => r.name).join(', ')}`)
    process.exitCode = 1
  }
}

main()
