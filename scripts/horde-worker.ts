#!/usr/bin/env -S npx tsx
/**
 * The reference worker: connects to the broker's worker channel, announces the models it
 * serves, and runs each pushed job on a backend (demo, a KoboldAI API, or an
 * OpenAI-compatible completions API), streaming the text back as it is made.
 *
 *   horde-worker --key KEY [--backend demo|kobold|openai] [--backend-url URL] [--model m]...
 *
 * Progress goes to stderr. SIGINT/SIGTERM close the socket and exit; jobs still running go
 * back to the broker's queue for another worker (the protocol has no "drain" message).
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

export const USAGE = `usage: horde-worker --key KEY [options]
  --url URL                 broker (HORDE_URL, default ${DEFAULT_URL})
  --key KEY                 the owner's API key (HORDE_API_KEY); required
  --name NAME               worker name, unique on the broker (default horde-worker@<host>)
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
  --delay-ms N              demo: pause between words (default 0)`

const BACKENDS = ['demo', 'kobold', 'openai'] as const
type BackendName = (typeof BACKENDS)[number]

const log = (line: string) => process.stderr.write(`[horde-worker] ${line}\n`)

interface Setup { backend: Backend; models: string[] }

/** Builds the backend and settles which models to announce. */
async function setUp(name: BackendName, values: Record<string, any>): Promise<Setup> {
  const models: string[] = values.model ?? []
  switch (name) {
    case 'demo': {
      const delay = values['delay-ms'] === undefined ? 0 : Number(values['delay-ms'])
      if (!Number.isFinite(delay) || delay < 0) throw new UsageError('--delay-ms must be a number of milliseconds')
      return { backend: createDemoBackend({ delayMs: delay }), models: models.length ? models : ['demo/tiny'] }
    }
    case 'kobold': {
      const backend = createKoboldBackend({ url: values['backend-url'] ?? 'http://127.0.0.1:5001', key: values['backend-key'] })
      // The real horde worker announces the model KoboldCpp has loaded; so does this one.
      return { backend, models: models.length ? models : [await backend.model(AbortSignal.timeout(10_000))] }
    }
    case 'openai': {
      if (!values['backend-url']) throw new UsageError('--backend openai needs --backend-url')
      const backendModel: string | undefined = values['backend-model']
      if (!models.length && !backendModel) throw new UsageError('--backend openai needs --model (or --backend-model)')
      return {
        backend: createOpenAIBackend({ url: values['backend-url'], key: values['backend-key'], model: backendModel }),
        models: models.length ? models : [backendModel!],
      }
    }
  }
}

export async function main(argv: string[], env: Env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' }, key: { type: 'string' }, name: { type: 'string' },
      model: { type: 'string', multiple: true }, 'max-length': { type: 'string' }, 'max-context-length': { type: 'string' },
      threads: { type: 'string' }, 'priority-user': { type: 'string', multiple: true },
      backend: { type: 'string' }, 'backend-url': { type: 'string' }, 'backend-key': { type: 'string' }, 'backend-model': { type: 'string' },
      'delay-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stderr.write(`${USAGE}\n`)
    return EXIT.ok
  }
  const key = values.key ?? env.HORDE_API_KEY
  if (!key) throw new UsageError('a worker needs its owner\'s API key: --key or HORDE_API_KEY')
  const backendName = (values.backend ?? 'demo') as BackendName
  if (!BACKENDS.includes(backendName)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}`)
  const { backend, models } = await setUp(backendName, values)

  const client = new WorkerClient({
    url: values.url ?? env.HORDE_URL ?? DEFAULT_URL,
    key,
    name: values.name ?? `horde-worker@${os.hostname()}`,
    models,
    maxLength: positiveInt('max-length', values['max-length']) ?? 512,
    maxContextLength: positiveInt('max-context-length', values['max-context-length']) ?? 4096,
    threads: positiveInt('threads', values.threads) ?? 1,
    priorityUsernames: values['priority-user'] ?? [],
    backend,
  })

  client.on('ready', (r) => log(`ready: worker ${r.name} (id ${r.worker_id}) serving ${models.join(', ')} on the ${backend.name} backend`))
  client.on('job', (job) => log(`job ${job}: started`))
  client.on('settled', (s) => log(`job ${s.job}: ${s.outcome}, ${s.tokens} tokens, ${s.kudos} kudos`))
  client.on('error', (error) => log(`error: ${error.message}`))

  // The client's reconnect timer does not hold the process open; this does, until a stop.
  const keepAlive = setInterval(() => {}, 1 << 30)
  let stopping = false
  return await new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) { log('stopping now'); process.exit(EXIT.interrupted) }
      stopping = true
      log(`${signal}: stopping (running jobs go back to the queue)`)
      void client.stop().finally(() => { clearInterval(keepAlive); resolve(EXIT.ok) })
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
    client.on('closed', ({ code, reason, willReconnect }) => {
      if (stopping) return
      log(`connection closed (${code}${reason ? ` ${reason}` : ''})${willReconnect ? '; reconnecting' : ''}`)
      if (!willReconnect) {
        clearInterval(keepAlive)
        resolve(EXIT.failed)
      }
    })
    log(`connecting to ${values.url ?? env.HORDE_URL ?? DEFAULT_URL} as ${client.options.name}`)
    // A failed first connection that may be retried is reported by 'closed'; nothing to do here.
    client.start().catch(() => {})
  })
}

// Run when executed (also through an npm bin symlink), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2), process.env).then((code) => process.exit(code), (error) => {
    const usage = error instanceof UsageError || String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')
    process.stderr.write(`horde-worker: ${(error as Error).message}\n${usage ? `${USAGE}\n` : ''}`)
    process.exit(usage ? EXIT.usage : EXIT.failed)
  })
}
