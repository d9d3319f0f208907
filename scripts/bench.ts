/**
 * `npm run bench [-- --quick | --tiny] [--only a,b]`: every scenario against a real broker
 * and a private redis-server, each beside its raw baseline measured in the same run.
 * Prints a table (progress on stderr) and writes the figures as JSON to BENCH_OUT
 * (default bench-results.json). See docs/performance.md.
 *
 * Sizes: the default run takes under 5 minutes on 2 cores, `--quick` under 60 s (each plus up
 * to 2 and 1.5 minutes for the pg family, which needs PostgreSQL: BENCH_PG_URL, and up to 4 and
 * 3 for the cluster family, which starts a dozen broker processes); `--tiny`
 * (or BENCH_TINY=1) makes every scenario a few rounds, to check the harness itself.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startRedisServer, type RedisServer } from '../src/redis/redis-server.js'
import { createProgress, nofileLimit, size, tempDir, type BenchContext, type Figure, type Mode } from './bench/common.js'
import { runIdle } from './bench/idle.js'
import { runLatency } from './bench/latency.js'
import { runHordeApi } from './bench/horde-api.js'
import { runLedger } from './bench/ledger.js'
import { runPg } from './bench/pg.js'
import { runCluster } from './bench/cluster.js'
import { runOpenAI } from './bench/openai.js'
import { killChildren } from './bench/processes.js'
import { runReprioritize } from './bench/reprioritize.js'
import { runStreams } from './bench/streams.js'

/** Every figure the run must produce, in table order, with its goal on 2 cores. */
export const SCENARIOS: Array<{ name: string; goal: string; family: string }> = [
  { name: 'dispatch_p50_ms', goal: '<= 1 ms, ratio <= 3', family: 'latency' },
  { name: 'dispatch_p99_ms', goal: '<= 5 ms, ratio <= 3', family: 'latency' },
  { name: 'relay_p50_ms', goal: '<= 0.15 ms, ratio <= 2', family: 'latency' },
  { name: 'relay_p99_ms', goal: '<= 1 ms, ratio <= 2', family: 'latency' },
  { name: 'time_to_first_token_ms', goal: 'p50 <= 2 ms', family: 'latency' },
  { name: 'fast_dispatch_share', goal: '(submissions the fast path took)', family: 'latency' },
  { name: 'relay_tokens_per_s', goal: '>= 100000/s, ratio >= 0.5', family: 'streams' },
  { name: 'jobs_per_s_100_workers', goal: '>= 5000/s, ratio >= 0.25', family: 'streams' },
  { name: 'redis_commands_per_job', goal: '(fewer is better)', family: 'streams' },
  { name: 'frames_per_job', goal: '(fewer is better; 6 at least)', family: 'streams' },
  { name: 'idle_workers_held', goal: '>= 15000', family: 'idle' },
  { name: 'rss_kb_per_worker', goal: '<= 15 KB', family: 'idle' },
  { name: 'reprioritize_p50_ms_1k', goal: '(for growth)', family: 'reprioritize' },
  { name: 'reprioritize_p50_ms_100k', goal: '<= 0.3 ms, <= 2x the 1k figure', family: 'reprioritize' },
  { name: 'ledger_transfers_per_s', goal: 'ratio >= 0.5', family: 'ledger' },
  { name: 'v2_pop_dispatch_p50_ms', goal: '<= 5 ms, ratio <= 3 (native dispatch)', family: 'horde-api' },
  { name: 'v2_pop_dispatch_p99_ms', goal: '<= 20 ms (native dispatch beside it)', family: 'horde-api' },
  { name: 'pg_driver_transfer_tx_per_s', goal: 'node-postgres / postgres.js', family: 'pg' },
  { name: 'pg_driver_settle_tx_per_s_32', goal: 'node-postgres / postgres.js', family: 'pg' },
  { name: 'pg_driver_reads_per_s_32', goal: 'node-postgres / postgres.js', family: 'pg' },
  { name: 'pg_transfers_per_s', goal: 'store / raw, ratio >= 0.5', family: 'pg' },
  { name: 'pg_transfers_per_s_32', goal: 'store / raw, ratio >= 0.5', family: 'pg' },
  { name: 'pg_jobs_per_s_100_workers', goal: 'PostgreSQL / SQLite', family: 'pg' },
  { name: 'cluster_relay_p50_ms', goal: 'worker on A, client on B; raw PUBLISH beside it', family: 'cluster' },
  { name: 'cluster_relay_p99_ms', goal: 'raw PUBLISH beside it', family: 'cluster' },
  { name: 'single_process_relay_p50_ms', goal: '(CLUSTER off; raw PUBLISH beside it)', family: 'cluster' },
  { name: 'cluster_relay_chunks_per_s', goal: 'workers on A, clients on B; pipelined raw PUBLISH beside it', family: 'cluster' },
  { name: 'single_process_chunks_per_s', goal: '(CLUSTER off; the same PUBLISH beside it)', family: 'cluster' },
  { name: 'cluster_jobs_per_s_1p_sqlite', goal: 'one CLUSTER-off broker beside it', family: 'cluster' },
  { name: 'cluster_jobs_per_s_2p_sqlite', goal: '(2 cores: correctness, not speed-up)', family: 'cluster' },
  { name: 'cluster_jobs_per_s_3p_sqlite', goal: '(2 cores: correctness, not speed-up)', family: 'cluster' },
  { name: 'cluster_jobs_per_s_1p_pg', goal: 'one CLUSTER-off broker beside it', family: 'cluster' },
  { name: 'cluster_jobs_per_s_2p_pg', goal: '(2 cores: correctness, not speed-up)', family: 'cluster' },
  { name: 'cluster_jobs_per_s_3p_pg', goal: '(2 cores: correctness, not speed-up)', family: 'cluster' },
  { name: 'openai_first_token_p50_ms', goal: 'ratio <= 2 (baseline: the native client\'s first token)', family: 'openai' },
  { name: 'openai_first_token_p99_ms', goal: 'ratio <= 2', family: 'openai' },
]

const FAMILIES: Record<string, (ctx: BenchContext) => Promise<void>> = {
  latency: runLatency,
  streams: runStreams,
  idle: runIdle,
  reprioritize: runReprioritize,
  ledger: runLedger,
  'horde-api': runHordeApi,
  pg: runPg,
  cluster: runCluster,
  openai: runOpenAI,
}

function parseArgs(argv: string[]): { mode: Mode; only: Set<string> | null } {
  let mode: Mode = process.env.BENCH_TINY === '1' ? 'tiny' : 'full'
  let only: Set<string> | null = null
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--quick' && mode !== 'tiny') mode = 'quick'
    else if (arg === '--tiny') mode = 'tiny'
    else if (arg === '--only') only = new Set(argv[++i].split(','))
    else throw new Error(`unknown argument ${arg} (use --quick, --tiny, --only family,...)`)
  }
  return { mode, only }
}

function redisVersion(): string {
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? ''
  return /v=(\S+)/.exec(out)?.[1] ?? 'unknown'
}

function machine(mode: Mode): Record<string, unknown> {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory_mb: Math.round(os.totalmem() / 2 ** 20),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    redis_server: redisVersion(),
    loadavg_at_start: os.loadavg().map((l) => Number(l.toFixed(2))),
    mode,
    broker: 'child process (createBroker), load generated by the bench process; reprioritize and ledger call broker code in-process',
  }
}

function formatNumber(value: number | null): string {
  if (value === null) return '-'
  if (!Number.isFinite(value)) return String(value)
  return Math.abs(value) >= 1000 ? Math.round(value).toLocaleString('en-US') : String(value)
}

export function formatTable(scenarios: Record<string, Figure>): string {
  const rows = [['scenario', 'value', 'unit', 'baseline', 'ratio', 'goal']]
  for (const { name, goal } of SCENARIOS) {
    const f = scenarios[name]
    rows.push(f ? [name, formatNumber(f.value), f.unit, formatNumber(f.baseline), formatNumber(f.ratio), goal] : [name, 'not run', '', '', '', goal])
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n')
}

async function main(): Promise<void> {
  const { mode, only } = parseArgs(process.argv.slice(2))
  const out = path.resolve(process.env.BENCH_OUT ?? 'bench-results.json')
  const families = [...new Set(SCENARIOS.map((s) => s.family))].filter((f) => !only || only.has(f))
  // The pg family creates databases and starts two more brokers: it has a budget of its own.
  const budgetMs = size(mode, 420_000, 90_000, 120_000) + (families.includes('pg') ? size(mode, 120_000, 90_000, 60_000) : 0)
    + (families.includes('cluster') ? size(mode, 240_000, 180_000, 150_000) : 0)
  const scenarios: Record<string, Figure> = {}
  const info = machine(mode)
  const write = () => fs.writeFileSync(out, `${JSON.stringify({ scenarios, machine: info, nofile_limit: nofileLimit() }, null, 2)}\n`)
  let redis: RedisServer | undefined
  // Cut short (the budget, or Ctrl-C / SIGTERM): what was measured is kept, the missing
  // figures say so, and no child (broker, raw ws, redis-server) outlives the run.
  const abort = (why: string) => {
    process.stderr.write(`\nbench: ${why}; stopping (partial results in ${out})\n`)
    killChildren()
    if (redis?.pid) try { process.kill(redis.pid, 'SIGKILL') } catch { /* already gone */ }
    write()
    process.exit(1)
  }
  const watchdog = setTimeout(() => abort(`over its ${budgetMs / 1000} s budget`), budgetMs)
  watchdog.unref()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => abort(`${signal} received`))

  const progress = createProgress()
  const dir = tempDir('horde-bench-')
  const childNodeArgs = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []
  try {
    progress.set('starting redis-server')
    redis = await startRedisServer({ dir: path.join(dir, 'redis'), appendOnly: false })
    const ctx: BenchContext = {
      mode,
      redisUrl: redis.url,
      dir,
      childNodeArgs,
      record: (name, figure) => { scenarios[name] = figure },
      progress: (text) => progress.set(text),
    }
    for (const [i, family] of families.entries()) {
      const prefix = `[${i + 1}/${families.length} ${family}]`
      await FAMILIES[family]({ ...ctx, progress: (text) => progress.set(`${prefix} ${text}`) })
    }
  } finally {
    progress.done()
    killChildren()
    await redis?.kill().catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
  write()
  process.stdout.write(`${formatTable(scenarios)}\n\nmode ${mode}; ${info.nproc} x ${info.cpu}; node ${info.node}; redis ${info.redis_server}; open-file limit ${nofileLimit()}\nwrote ${out}\n`)
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`\nbench failed: ${error instanceof Error ? error.stack : String(error)}\n`)
  killChildren()
  process.exit(1)
})
