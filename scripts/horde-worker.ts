#!/usr/bin/env node
/**
 * The reference worker: connects to the broker's worker channel, announces the models it
 * serves, and runs each pushed job on a backend (demo, a KoboldAI API, or an
 * OpenAI-compatible completions API), streaming the text back as it is made.
 *
 *   horde-worker [--config worker.yaml] [--key KEY] [--backend demo|kobold|openai] ...
 *
 * Before connecting it probes the backend and waits while it is loading; while the backend
 * is down it leaves the horde and comes back when it answers. Progress goes to stderr: a
 * live status line on a terminal, plain lines otherwise. SIGUSR2 (or the `m` key on a
 * terminal) switches maintenance on and off: the running jobs finish, no new ones come. The
 * first Ctrl-C (or SIGTERM) finishes the running jobs and stops; a second stops at once
 * (those go back to the queue).
 */
import os from 'node:os'
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { Backend } from '../src/clients/backends/backend.js'
import { createDemoBackend } from '../src/clients/backends/demo.js'
import { createKoboldBackend } from '../src/clients/backends/kobold.js'
import { createOpenAIBackend } from '../src/clients/backends/openai.js'
import { WorkerClient } from '../src/clients/worker-client.js'
import { DEFAULT_URL, EXIT, positiveInt, UsageError, type Env } from './cli/command.js'
import { preflight } from './worker/checks.js'
import { mergeSettings, readConfigFile, type WorkerSettings } from './worker/config.js'
import { createReporter, type Reporter } from './worker/status-line.js'

export const USAGE = `usage: horde-worker [--config FILE] [--key KEY] [options]
  --config FILE             YAML settings (bridgeData.yaml keys: horde_url, api_key, worker_name,
                            models_to_serve, max_length, max_context_length, max_threads,
                            priority_usernames, kai_url; and backend, backend_key, backend_model);
                            the flags below override it
  --url URL                 broker (HORDE_URL, default ${DEFAULT_URL})
  --key KEY                 the owner's API key (HORDE_API_KEY); required
  --name NAME               worker name, unique on the broker (default horde-worker@<host>-<pid>)
  --model NAME              a model served, as the horde names it; repeatable
                            (default: demo/tiny on demo, the loaded model on kobold)
  --max-length N            longest generation accepted, in tokens (default 512)
  --max-context-length N    longest context accepted, in tokens (default 4096)
  --threads N               jobs run at once (default 1)
  --priority-user NAME      served first after the owner; repeatable
  --backend demo|kobold|openai   (default demo)
  --backend-url URL         backend API (kobold default http://127.0.0.1:5001; openai: required)
  --backend-key KEY         backend bearer key
  --backend-model NAME      openai: the model name the backend knows (default: the horde name)
  --delay-ms N              demo: pause between words (default 0)
  --probe-ms N              how often to probe a backend that is down or loading (default 5000)
While it runs: SIGUSR2 (or the m key on a terminal) switches maintenance on and off (running
jobs finish, no new ones come); Ctrl-C or SIGTERM finishes the running jobs, then stops.`

const BACKENDS = ['demo', 'kobold', 'openai'] as const
type BackendName = (typeof BACKENDS)[number]

function makeBackend(name: BackendName, s: WorkerSettings): Backend {
  switch (name) {
    case 'demo': return createDemoBackend({ delayMs: s.delayMs ?? 0 })
    case 'kobold': return createKoboldBackend({ url: s.backendUrl ?? 'http://127.0.0.1:5001', key: s.backendKey })
    case 'openai':
      if (!s.backendUrl) throw new UsageError('--backend openai needs --backend-url (backend_url)')
      if (!s.models?.length && !s.backendModel) throw new UsageError('--backend openai needs --model (or --backend-model)')
      return createOpenAIBackend({ url: s.backendUrl, key: s.backendKey, model: s.backendModel })
  }
}

/** Probes until the backend is up (waiting while it loads); a refused key is fatal. Returns the model it reports. */
async function waitForBackend(backend: Backend, probeMs: number, out: Reporter, stopped: () => boolean): Promise<string | undefined> {
  let last = ''
  for (;;) {
    const result = await backend.probe(AbortSignal.timeout(10_000))
    if (result.state === 'up') return result.model
    if (result.state === 'refused') throw new Error(result.reason)
    if (result.reason !== last) out.log(`backend not ready: ${result.reason}; probing every ${probeMs / 1000} s`)
    last = result.reason
    out.totals.state = 'waiting for backend'
    await new Promise((resolve) => setTimeout(resolve, probeMs))
    if (stopped()) return undefined
  }
}

/**
 * On a terminal, single keys act at once (`m`: maintenance on or off). Raw mode turns
 * Ctrl-C into a key, so it is passed on as the SIGINT it would have been.
 */
function listenForKeys(actions: Record<string, () => void>): { stop(): void } | undefined {
  const stdin = process.stdin
  if (!stdin.isTTY) return undefined
  stdin.setRawMode(true)
  stdin.setEncoding('utf8')
  const onData = (key: string) => {
    if (key === '\u0003') process.emit('SIGINT')
    else actions[key.toLowerCase()]?.()
  }
  stdin.on('data', onData)
  return {
    stop() {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
    },
  }
}

function flagSettings(values: Record<string, any>): WorkerSettings {
  const delay = values['delay-ms'] === undefined ? undefined : Number(values['delay-ms'])
  if (delay !== undefined && (!Number.isFinite(delay) || delay < 0)) throw new UsageError('--delay-ms must be a number of milliseconds')
  return {
    url: values.url, key: values.key, name: values.name, models: values.model,
    maxLength: positiveInt('max-length', values['max-length']), maxContextLength: positiveInt('max-context-length', values['max-context-length']),
    threads: positiveInt('threads', values.threads), priorityUsers: values['priority-user'],
    backend: values.backend, backendUrl: values['backend-url'], backendKey: values['backend-key'], backendModel: values['backend-model'], delayMs: delay,
  }
}

export async function main(argv: string[], env: Env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' }, url: { type: 'string' }, key: { type: 'string' }, name: { type: 'string' },
      model: { type: 'string', multiple: true }, 'max-length': { type: 'string' }, 'max-context-length': { type: 'string' },
      threads: { type: 'string' }, 'priority-user': { type: 'string', multiple: true },
      backend: { type: 'string' }, 'backend-url': { type: 'string' }, 'backend-key': { type: 'string' }, 'backend-model': { type: 'string' },
      'delay-ms': { type: 'string' }, 'probe-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stderr.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const out = createReporter(process.stderr, { prefix: '[horde-worker]' })
  const file = values.config ? readConfigFile(values.config) : { settings: {}, ignored: [] }
  if (file.ignored.length) out.log(`${values.config}: not used by this worker: ${file.ignored.join(', ')}`)
  const s = mergeSettings(file.settings, flagSettings(values))
  const key = s.key ?? env.HORDE_API_KEY
  if (!key) throw new UsageError('a worker needs its owner\'s API key: api_key in the config, --key or HORDE_API_KEY')
  const backendName = (s.backend ?? 'demo') as BackendName
  if (!BACKENDS.includes(backendName)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}`)
  const backend = makeBackend(backendName, s)
  const probeMs = positiveInt('probe-ms', values['probe-ms']) ?? 5000
  const url = s.url ?? env.HORDE_URL ?? DEFAULT_URL
  // Unique per process, so two workers on one host never knock each other off (4409).
  const name = s.name ?? `horde-worker@${os.hostname()}-${process.pid}`

  let stopping = false
  let client: WorkerClient | undefined
  const keepAlive = setInterval(() => {}, 1 << 30)
  let keys: { stop(): void } | undefined
  const finish = (code: number) => { clearInterval(keepAlive); keys?.stop(); out.stop(); return code }
  const exited = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) { out.log('stopping now: running jobs go back to the queue'); keys?.stop(); out.stop(); process.exit(EXIT.interrupted) }
      stopping = true
      out.totals.state = 'stopping'
      if (!client) { resolve(finish(EXIT.ok)); return }
      out.log(`${signal}: finishing ${client.busy} running job(s), taking no more (again to stop now)`)
      void client.drain().finally(() => resolve(finish(EXIT.ok)))
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  })

  const loaded = await Promise.race([waitForBackend(backend, probeMs, out, () => stopping), exited.then(() => undefined)])
  if (stopping) return exited
  const models = s.models?.length ? s.models : backendName === 'demo' ? ['demo/tiny'] : [s.backendModel ?? loaded!].filter(Boolean)
  if (!models.length) throw new UsageError('the backend named no model: give --model (models_to_serve)')
  if (!s.name) out.log(`no worker_name set: using ${name} (set one to keep your worker's stats across restarts)`)
  for (const warning of await preflight(url, name, models)) out.log(`warning: ${warning}`)

  client = new WorkerClient({
    url, key, name, models, backend, probeMs,
    maxLength: s.maxLength ?? 512, maxContextLength: s.maxContextLength ?? 4096, threads: s.threads ?? 1, priorityUsernames: s.priorityUsers ?? [],
  })
  const started = new Map<string, number>()
  const totals = out.totals
  // Maintenance: finish the running jobs, take no new ones, until it is switched off again.
  let maintenance = false
  const toggleMaintenance = () => {
    if (!client || stopping) return
    maintenance = !maintenance
    client.maintenance(maintenance)
    totals.state = maintenance ? 'maintenance' : client.busy ? 'working' : 'idle'
    out.log(maintenance
      ? `maintenance on: finishing ${client.busy} running job(s), taking no new ones (SIGUSR2${keys ? ' or m' : ''} again to resume)`
      : 'maintenance off: taking jobs again')
  }
  process.on('SIGUSR2', toggleMaintenance)
  keys = listenForKeys({ m: toggleMaintenance })
  client.on('ready', (r) => {
    totals.state = maintenance ? 'maintenance' : 'idle'
    out.log(`ready: worker ${r.name} (id ${r.worker_id}) serving ${models.join(', ')} on the ${backend.name} backend`)
    if (r.unknown_priority_users?.length) out.log(`warning: no user is named ${r.unknown_priority_users.join(', ')} (priority_usernames)`)
  })
  client.on('job', (job) => { started.set(job, performance.now()); totals.state = 'working'; out.log(`job ${job}: started`) })
  const ended = (job: string) => {
    const at = started.get(job)
    if (at !== undefined) totals.busyMs += performance.now() - at
    started.delete(job)
    if (started.size === 0 && totals.state === 'working') totals.state = 'idle'
  }
  client.on('settled', (x) => {
    ended(x.job)
    if (x.outcome === 'done') totals.jobs++
    totals.tokens += x.tokens
    totals.kudos += x.kudos
    out.log(`job ${x.job}: ${x.outcome}, ${x.tokens} tokens, ${x.kudos} kudos`)
  })
  client.on('failed', (f) => { ended(f.job); totals.failures++; out.log(`job ${f.job}: failed: ${f.reason}`) })
  client.on('paused', (p) => { totals.state = 'paused'; out.log(`paused by the broker for ${p.seconds} s after ${p.failures} failures in a row (last: ${p.reason})`) })
  client.on('moderated', (m) => {
    if (m.paused) totals.state = 'paused'
    else if (totals.state === 'paused') totals.state = 'idle'
    out.log(m.paused ? `paused by a moderator: ${m.reason ?? 'no reason given'} (no jobs until unpaused)` : `not paused by a moderator${m.trusted ? '; trusted' : ''}`)
  })
  client.on('backend', (b) => {
    if (b.state === 'up') out.log('backend is back: rejoining the horde')
    else { totals.state = 'backend down'; out.log(`backend down: ${'reason' in b ? b.reason : ''}; left the horde until it answers again`) }
  })
  client.on('error', (error) => out.log(`error: ${error.message}`))
  client.on('closed', ({ code, reason, willReconnect }) => {
    if (stopping) return
    out.log(`connection closed (${code}${reason ? ` ${reason}` : ''})${willReconnect ? '; reconnecting' : ''}`)
    if (!willReconnect) { process.exitCode = EXIT.failed; process.emit('SIGTERM') }
  })
  out.log(`connecting to ${url} as ${name}`)
  client.start().catch(() => { /* a failed first connection is reported by 'closed' */ })
  const code = await exited
  return process.exitCode === EXIT.failed ? EXIT.failed : code
}

// Run when executed (also through an npm bin symlink), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2), process.env).then((code) => process.exit(code), (error) => {
    const usage = error instanceof UsageError || String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')
    process.stderr.write(`horde-worker: ${(error as Error).message}\n${usage ? `${USAGE}\n` : ''}`)
    process.exit(usage ? EXIT.usage : EXIT.failed)
  })
}
