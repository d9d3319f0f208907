/**
 * The benchmark harness must not rot: `npm run bench -- --quick --tiny` runs every scenario
 * with a few rounds each and writes JSON with every figure. Nothing here is timed.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const NAMES = [
  'dispatch_p50_ms', 'dispatch_p99_ms', 'relay_p50_ms', 'relay_p99_ms', 'relay_tokens_per_s',
  'jobs_per_s_100_workers', 'idle_workers_held', 'rss_kb_per_worker', 'reprioritize_p50_ms_1k',
  'reprioritize_p50_ms_100k', 'ledger_transfers_per_s', 'time_to_first_token_ms', 'fast_dispatch_share',
  'v2_pop_dispatch_p50_ms', 'v2_pop_dispatch_p99_ms', 'redis_commands_per_job', 'frames_per_job',
  'pg_driver_transfer_tx_per_s', 'pg_driver_settle_tx_per_s_32', 'pg_driver_reads_per_s_32',
  'pg_transfers_per_s', 'pg_transfers_per_s_32', 'pg_jobs_per_s_100_workers',
  'openai_first_token_p50_ms', 'openai_first_token_p99_ms',
  'cluster_relay_p50_ms', 'cluster_relay_p99_ms', 'single_process_relay_p50_ms', 'cluster_relay_chunks_per_s',
  'single_process_chunks_per_s', 'cluster_jobs_per_s_1p_sqlite', 'cluster_jobs_per_s_2p_sqlite', 'cluster_jobs_per_s_3p_sqlite',
  'cluster_jobs_per_s_1p_pg', 'cluster_jobs_per_s_2p_pg', 'cluster_jobs_per_s_3p_pg',
]

/** Throughputs count what arrived: a broken pairing of streams shows as 0, which is finite. */
const COUNTED = ['relay_tokens_per_s', 'jobs_per_s_100_workers', 'cluster_relay_chunks_per_s', 'single_process_chunks_per_s']

// Every family, the cluster's five broker processes and the pg family's databases included: on a
// loaded machine this takes minutes.
t.setTimeout(600_000)

t.test('npm run bench -- --quick --tiny writes every scenario with a finite value', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-bench-test-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const out = path.join(dir, 'results.json')
  const run = spawn('npm', ['run', '--silent', 'bench', '--', '--quick', '--tiny'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, BENCH_OUT: out },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  run.stdout.on('data', (data) => (output += data))
  run.stderr.on('data', (data) => (output += data))
  const code = await new Promise<number | null>((resolve) => run.on('exit', resolve))
  t.equal(code, 0, `the bench exits cleanly\n${output.slice(-2000)}`)

  const result = JSON.parse(fs.readFileSync(out, 'utf8'))
  t.same(Object.keys(result).sort(), ['machine', 'nofile_limit', 'scenarios'])
  t.ok(Number.isFinite(result.nofile_limit) && result.nofile_limit > 0, 'the open-file limit is reported')
  t.equal(result.machine.mode, 'tiny')
  for (const name of NAMES) {
    const figure = result.scenarios[name]
    t.ok(figure, `${name} is present`)
    if (!figure) continue
    t.ok(Number.isFinite(figure.value), `${name} has a finite value (${figure.value})`)
    if (COUNTED.includes(name)) t.ok(figure.value > 0, `${name} counted something (${figure.value})`)
    t.type(figure.unit, 'string')
    t.ok(figure.baseline === null || Number.isFinite(figure.baseline), `${name} baseline is a number or null`)
    t.ok(figure.ratio === null || Number.isFinite(figure.ratio), `${name} ratio is a number or null`)
  }
  t.match(output, /\| scenario +\| value/, 'the table is printed')
})
