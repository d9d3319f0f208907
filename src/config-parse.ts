/** The parsers every setting goes through: each names its variable in the error it throws. */
import { isIP } from 'node:net'

export class ConfigError extends Error {
  constructor(readonly variable: string, detail: string) {
    super(`Invalid ${variable}: ${detail}`)
    this.name = 'ConfigError'
  }
}

export type Env = Record<string, string | undefined>

export function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `expected ${min}..${max}, got ${value}`)
  return value
}

export function num(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value)) throw new ConfigError(name, `expected a number, got ${JSON.stringify(raw)}`)
  if (value < min || value > max) throw new ConfigError(name, `expected ${min}..${max}, got ${value}`)
  return value
}

/** A credit line in kudos (at most 3 decimals), as milli-kudos; `none` (or the fallback null): no limit. */
export function creditLine(env: Env, name: string, fallback: number | null): number | null {
  const raw = env[name]?.trim()
  if (raw === undefined || raw === '') return fallback
  if (raw.toLowerCase() === 'none') return null
  if (!/^\d{1,12}(\.\d{1,3})?$/.test(raw)) throw new ConfigError(name, `expected kudos (0 or more, at most 3 decimals) or none, got ${JSON.stringify(raw)}`)
  return Math.round(Number(raw) * 1000)
}

export function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = raw.trim() as T
  if (!allowed.includes(value)) throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`)
  return value
}

export function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, `expected a URL, got ${JSON.stringify(raw)}`)
  }
  if (!protocols.includes(parsed.protocol)) throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL, got ${parsed.protocol}`)
  return raw
}

/** `ADMIN_USERS=alice, 7`: usernames or numeric user ids, comma-separated. */
export function adminUsers(env: Env): string[] {
  const raw = env.ADMIN_USERS ?? ''
  const names = raw.split(',').map((name) => name.trim()).filter(Boolean)
  for (const name of names) {
    if (!/^\d{1,15}$/.test(name) && !/^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$/.test(name)) {
      throw new ConfigError('ADMIN_USERS', `expected usernames or user ids separated by commas, got ${JSON.stringify(name)}`)
    }
  }
  return [...new Set(names)]
}

/**
 * `TRUST_PROXY=127.0.0.1, 10.0.0.0/8`: the proxies whose `X-Forwarded-For` names the client,
 * as addresses or CIDR ranges. Empty (the default): the TCP peer is the client. "Everyone"
 * is not accepted: on a broker reachable without the proxy, any client could claim any address.
 */
export function trustedProxies(env: Env): string[] {
  const entries = (env.TRUST_PROXY ?? '').split(',').map((entry) => entry.trim()).filter(Boolean)
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/')
    const family = isIP(address ?? '')
    const maxBits = family === 6 ? 128 : 32
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits)
    if (family === 0 || !okBits || extra !== undefined) {
      throw new ConfigError('TRUST_PROXY', `expected proxy addresses or CIDR ranges separated by commas, got ${JSON.stringify(entry)}`)
    }
  }
  return [...new Set(entries)]
}
