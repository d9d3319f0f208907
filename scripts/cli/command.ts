/**
 * What every `horde` subcommand shares: its signature, the exit codes, and the broker
 * connection options (`--url`/HORDE_URL, `--key`/HORDE_API_KEY).
 */

export type Env = Record<string, string | undefined>

/** A subcommand: its own arguments (after the subcommand name) in, an exit code out. */
export type Command = (argv: string[], env: Env) => Promise<number>

export const EXIT = {
  ok: 0,
  /** The request failed or was refused, or the broker could not be reached. */
  failed: 1,
  /** Bad arguments. */
  usage: 2,
  /** Cancelled with Ctrl-C (128 + SIGINT, as shells report it). */
  interrupted: 130,
} as const

export const DEFAULT_URL = 'http://127.0.0.1:7001'

/** parseArgs option specs for the connection, shared by every subcommand. */
export const connectionOptions = {
  url: { type: 'string' },
  key: { type: 'string' },
} as const

/** The broker URL and key from the flags, else the environment. An empty key means anonymous. */
export function connection(values: { url?: string; key?: string }, env: Env): { url: string; key: string | undefined } {
  return { url: values.url ?? env.HORDE_URL ?? DEFAULT_URL, key: values.key ?? (env.HORDE_API_KEY || undefined) }
}

/** Thrown for bad arguments; the dispatcher prints it with the usage and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** A positive integer flag, or a UsageError naming it. */
export function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(value)}`)
  return n
}
