/**
 * `horde "<prompt>"`: submits over the client socket and streams the text to stdout as it
 * is made; progress (queue position, ETA, worker) goes to stderr, so stdout holds only the
 * text. Ctrl-C cancels the request on the broker (pay for what was delivered); a second
 * Ctrl-C quits at once.
 */
import { parseArgs } from 'node:util'
import { generate, type GenerationResult } from '../../src/clients/client.js'
import type { GenerateBody } from '../../src/protocol/client.js'
import { connection, connectionOptions, EXIT, positiveInt, UsageError, type Env } from './command.js'

export const GENERATE_USAGE = `horde "<prompt>" | - | -i [--model m]... [--max-length n] [--max-context-length n]
                  [--param name=value]... [--url URL] [--key KEY]
                  (- or a piped stdin: the prompt is read from stdin; -i: one prompt per line)`

/** How long to wait for the broker to confirm a Ctrl-C cancel before quitting anyway. */
const CANCEL_GRACE_MS = 10_000

/** `name=value` to a sampler parameter; numbers and booleans are typed, the rest is text. */
export function parseParam(spec: string): [string, number | string | boolean] {
  const eq = spec.indexOf('=')
  if (eq < 1) throw new UsageError(`--param wants name=value, got ${JSON.stringify(spec)}`)
  const name = spec.slice(0, eq)
  const raw = spec.slice(eq + 1)
  if (raw === 'true' || raw === 'false') return [name, raw === 'true']
  const n = Number(raw)
  return [name, raw.trim() !== '' && Number.isFinite(n) ? n : raw]
}

export async function runGenerate(argv: string[], env: Env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      model: { type: 'string', multiple: true },
      'max-length': { type: 'string' },
      'max-context-length': { type: 'string' },
      param: { type: 'string', multiple: true },
      interactive: { type: 'boolean', short: 'i' },
    },
  })
  const { url, key } = connection(values, env)
  if (values.interactive) {
    if (positionals.length) throw new UsageError('-i reads the prompts from the terminal; give no prompt')
    return interactive((prompt) => runOne({ ...bodyOf(values), prompt }, url, key))
  }
  let prompt = positionals[0]
  if (positionals.length === 0 && !process.stdin.isTTY || prompt === '-') prompt = await readStdin()
  if (positionals.length > 1 || !prompt) throw new UsageError('give exactly one prompt (quote it), or - to read it from stdin')
  return runOne({ ...bodyOf(values), prompt }, url, key)
}

/** Reads all of stdin (a prompt piped in), without the one trailing newline an editor or echo adds. */
async function readStdin(): Promise<string> {
  let text = ''
  process.stdin.setEncoding('utf8')
  for await (const piece of process.stdin) text += piece
  return text.replace(/\r?\n$/, '')
}

/** `horde -i`: a prompt per line, each generated in turn; an empty line or Ctrl-D ends it. */
async function interactive(run: (prompt: string) => Promise<number>): Promise<number> {
  const { createInterface } = await import('node:readline/promises')
  let last: number = EXIT.ok
  for (;;) {
    const rl = createInterface({ input: process.stdin, output: process.stderr })
    let line: string
    try {
      line = await rl.question('prompt> ')
    } catch {
      line = '' // Ctrl-D
    } finally {
      rl.close()
    }
    if (line.trim() === '') return last
    last = await run(line)
    if (last === EXIT.interrupted) return last
  }
}

function bodyOf(values: { model?: string[]; 'max-length'?: string; 'max-context-length'?: string; param?: string[] }): Omit<GenerateBody, 'prompt'> {
  const body: Omit<GenerateBody, 'prompt'> = {}
  if (values.model?.length) body.models = values.model
  const maxLength = positiveInt('max-length', values['max-length'])
  const maxContextLength = positiveInt('max-context-length', values['max-context-length'])
  if (maxLength !== undefined) body.max_length = maxLength
  if (maxContextLength !== undefined) body.max_context_length = maxContextLength
  if (values.param?.length) body.params = Object.fromEntries(values.param.map(parseParam))
  return body
}

/** One generation: text to stdout as it streams, progress to stderr. */
async function runOne(body: GenerateBody, url: string, key: string | undefined): Promise<number> {

  const say = (line: string) => process.stderr.write(`${line}\n`)
  const controller = new AbortController()
  let interrupted = false
  const onSigint = () => {
    if (interrupted) process.exit(EXIT.interrupted)
    interrupted = true
    say('\ncancelling… (Ctrl-C again to quit at once)')
    controller.abort()
    setTimeout(() => { say('the broker did not confirm the cancel; quitting'); process.exit(EXIT.interrupted) }, CANCEL_GRACE_MS).unref()
  }
  process.on('SIGINT', onSigint)
  // A closed pipe (`horde … | head`) is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => { if (error.code === 'EPIPE') process.exit(EXIT.ok) })

  let printed = false
  let endsInNewline = true
  let result: GenerationResult
  try {
    result = await generate({
      url, key, body, signal: controller.signal,
      onAccepted: (request, capability) => {
        say(`request ${request}${key ? '' : ' (anonymous)'}`)
        // An anonymous request opens only with it: `horde status ID --capability CAP`.
        if (capability) say(`capability ${capability}`)
      },
      onQueued: (q) => {
        if (q.restarting) say(`${q.reason ?? 'the worker was lost'}; the request is back in the queue`)
        // An ETA means something only when some worker can serve the request.
        else if (q.position !== null) say(`queued: position ${q.position}${q.is_possible && q.eta_seconds !== null ? `, eta ${q.eta_seconds} s` : ''}${q.is_possible ? '' : ' (no connected worker can serve it yet)'}`)
      },
      onStarted: (s) => say(`started on worker ${s.worker} (model ${s.model}${s.attempt > 1 ? `, attempt ${s.attempt}` : ''})`),
      onReconnecting: (code) => say(`the broker went away (${code}); reconnecting…`),
      onReconnected: () => say('reconnected; following the request again'),
      onRestarted: (attempt) => {
        // Text already printed cannot be taken back: mark the break, then stream the new attempt.
        say(`\n--- restarted (attempt ${attempt}): the text above is void; the new text follows ---`)
        endsInNewline = true
      },
      onChunk: (text) => {
        process.stdout.write(text)
        printed = true
        if (text !== '') endsInNewline = text.endsWith('\n')
      },
    })
  } finally {
    process.off('SIGINT', onSigint)
  }
  // Keep a shell prompt off the last line of text on a terminal; pipes get the text exactly.
  if (printed && !endsInNewline && process.stdout.isTTY) process.stdout.write('\n')
  switch (result.state) {
    case 'done':
      if (!printed && result.text) process.stdout.write(result.text)
      say(`done: ${result.tokens} tokens, ${result.kudos} kudos${result.worker ? `, worker ${result.worker}` : ''}`)
      return EXIT.ok
    case 'cancelled':
      say(`cancelled: ${result.tokens} tokens delivered, ${result.kudos} kudos`)
      return interrupted ? EXIT.interrupted : EXIT.failed
    case 'failed':
      say(`failed: ${result.code}: ${result.message}`)
      return EXIT.failed
    case 'error':
      say(`error: ${result.code}: ${result.message}`)
      return EXIT.failed
  }
}
