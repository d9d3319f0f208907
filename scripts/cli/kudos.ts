/**
 * `horde transfer <to> <amount> [--memo m]` and `horde balance`: the kudos commands of the
 * CLI. Each returns the process exit code instead of exiting, so `scripts/horde.ts` can
 * wire them and tests can run them in-process against a real broker.
 *
 * The broker is `--url` or HORDE_URL (default http://127.0.0.1:7001); the key is `--key`
 * or HORDE_API_KEY. Both go over REST: one request each, no socket to manage.
 *
 * Exit codes: 0 done · 1 the broker refused (its error code on stderr) · 2 usage ·
 * 3 the broker could not be reached or failed (5xx).
 */
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'

export type Env = Record<string, string | undefined>

/** Where the commands print; stdout and stderr unless a caller (a test) hands its own. */
export interface CliIo {
  out(line: string): void
  err(line: string): void
}

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const

export const DEFAULT_URL = 'http://127.0.0.1:7001'

const consoleIo: CliIo = { out: (line) => console.log(line), err: (line) => console.error(line) }

/** Attempts for one command when the broker is unreachable or answers 5xx; the idempotency key makes retries safe. */
const ATTEMPTS = 3

const TRANSFER_USAGE = 'usage: horde transfer <to> <amount> [--memo text] [--idempotency-key key] [--url url] [--key apikey] [--json]'
const BALANCE_USAGE = 'usage: horde balance [--url url] [--key apikey] [--json]'

interface Common {
  url: string
  key: string
  json: boolean
}

class UsageError extends Error {}

function common(values: { url?: string; key?: string; json?: boolean }, env: Env): Common {
  const url = (values.url ?? env.HORDE_URL ?? DEFAULT_URL).replace(/\/+$/, '')
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http')
  } catch {
    throw new UsageError(`not an http(s) URL: ${url}`)
  }
  const key = values.key ?? env.HORDE_API_KEY ?? ''
  if (key === '') throw new UsageError('no API key: pass --key or set HORDE_API_KEY')
  return { url, key, json: values.json ?? false }
}

type Answer = { kind: 'ok'; status: number; body: any } | { kind: 'refused'; status: number; code: string; message: string } | { kind: 'unreachable'; message: string }

async function call(base: string, method: string, route: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  let last: Answer = { kind: 'unreachable', message: 'no attempt made' }
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt))
    try {
      const response = await fetch(base + route, {
        method,
        headers: { apikey: key, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
      const text = await response.text()
      let parsed: any
      try { parsed = text ? JSON.parse(text) : undefined } catch { parsed = undefined }
      if (response.ok) return { kind: 'ok', status: response.status, body: parsed }
      const error = parsed?.error ?? {}
      const answer: Answer = { kind: 'refused', status: response.status, code: String(error.code ?? response.status), message: String(error.message ?? response.statusText) }
      if (response.status < 500) return answer
      last = answer
    } catch (error) {
      last = { kind: 'unreachable', message: (error as Error).cause ? String(((error as Error).cause as Error).message ?? (error as Error).cause) : (error as Error).message }
    }
  }
  return last
}

function report(answer: Exclude<Answer, { kind: 'ok' }>, base: string, io: CliIo): number {
  if (answer.kind === 'unreachable') {
    io.err(`horde: cannot reach the broker at ${base}: ${answer.message}`)
    return EXIT.unreachable
  }
  io.err(`horde: ${answer.code}: ${answer.message}`)
  return answer.status >= 500 ? EXIT.unreachable : EXIT.refused
}

function parse<T>(run: () => T, usage: string, io: CliIo): T | number {
  try {
    return run()
  } catch (error) {
    io.err(`horde: ${(error as Error).message}`)
    io.err(usage)
    return EXIT.usage
  }
}

/** `horde transfer <to> <amount> [--memo m]`: sends kudos; a retry (same --idempotency-key) never sends twice. */
export async function runTransfer(argv: string[], env: Env, io: CliIo = consoleIo): Promise<number> {
  const parsed = parse(() => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        memo: { type: 'string' },
        'idempotency-key': { type: 'string' },
        url: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean' },
      },
    })
    if (positionals.length !== 2) throw new UsageError(positionals.length < 2 ? 'transfer needs a recipient and an amount' : `unexpected argument ${JSON.stringify(positionals[2])}`)
    const [to, amount] = positionals
    // Amounts go as text: the broker parses decimals exactly (at most 3 places).
    if (!/^\d+(\.\d+)?$/.test(amount)) throw new UsageError(`not an amount of kudos: ${JSON.stringify(amount)}`)
    return { ...common(values, env), to, amount, memo: values.memo, idempotencyKey: values['idempotency-key'] ?? `cli-${randomUUID()}` }
  }, TRANSFER_USAGE, io)
  if (typeof parsed === 'number') return parsed

  // A username made only of digits cannot exist, so `#12` or `12` both mean user id 12.
  const to = /^#?\d{1,15}$/.test(parsed.to) ? Number(parsed.to.replace('#', '')) : parsed.to
  const body: Record<string, unknown> = { to, amount: parsed.amount }
  if (parsed.memo !== undefined) body.memo = parsed.memo
  const answer = await call(parsed.url, 'POST', '/v1/kudos/transfers', parsed.key, body, { 'idempotency-key': parsed.idempotencyKey })
  if (answer.kind !== 'ok') return report(answer, parsed.url, io)
  const result = answer.body
  if (parsed.json) io.out(JSON.stringify(result))
  else if (result.replayed) io.out(`Already sent ${result.amount} kudos to ${result.to.username} (transfer ${result.id}); nothing moved this time.`)
  else io.out(`Sent ${result.amount} kudos to ${result.to.username} (transfer ${result.id}).`)
  return EXIT.ok
}

/** `horde balance`: the key owner's balance. */
export async function runBalance(argv: string[], env: Env, io: CliIo = consoleIo): Promise<number> {
  const parsed = parse(() => {
    const { values } = parseArgs({ args: argv, allowPositionals: false, options: { url: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } } })
    return common(values, env)
  }, BALANCE_USAGE, io)
  if (typeof parsed === 'number') return parsed
  const answer = await call(parsed.url, 'GET', '/v1/users/me', parsed.key)
  if (answer.kind !== 'ok') return report(answer, parsed.url, io)
  const me = answer.body
  if (parsed.json) io.out(JSON.stringify({ id: me.id, username: me.username, kudos: me.kudos, totals: me.totals }))
  else io.out(`${me.username}: ${me.kudos} kudos`)
  return EXIT.ok
}
