/** `horde models`: the broker's models, who serves them, what waits, and an ETA where a worker can serve. */
import { parseArgs } from 'node:util'
import { connection, connectionOptions, EXIT, type Env } from './command.js'

export const MODELS_USAGE = 'horde models [--json] [--all] [--url URL]'

export async function runModels(argv: string[], env: Env): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...connectionOptions, json: { type: 'boolean' }, all: { type: 'boolean' } } })
  const { url } = connection(values, env)
  let rows: Array<{ name: string; registered: boolean; size_b: number | null; workers: number; threads: number; waiting: number; eta_seconds: number | null }>
  try {
    const answer = await fetch(`${url.replace(/^ws/, 'http').replace(/\/+$/, '')}/v1/status/models`, { signal: AbortSignal.timeout(10_000) })
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`)
    rows = ((await answer.json()) as { models: typeof rows }).models
  } catch (error) {
    process.stderr.write(`error: cannot list the models at ${url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}\n`)
    return EXIT.failed
  }
  // Without --all, only what someone serves or waits for.
  const shown = values.all ? rows : rows.filter((r) => r.workers > 0 || r.waiting > 0)
  if (values.json) {
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`)
    return EXIT.ok
  }
  const table = [['model', 'size', 'workers', 'waiting', 'eta'], ...shown.map((r) => [
    r.name, r.size_b === null ? 'unlisted' : `${r.size_b}B`, String(r.workers), String(r.waiting), r.eta_seconds === null ? '-' : `${r.eta_seconds} s`,
  ])]
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)))
  for (const row of table) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()}\n`)
  if (shown.length === 0) process.stderr.write(values.all ? 'no models\n' : 'no worker is online (horde models --all lists the registry)\n')
  return EXIT.ok
}
