/**
 * A simulation scenario: who asks, who serves, for how long, under which policies. Read from a
 * JSON file and checked field by field, so a typo names its path instead of running a wrong load.
 */
import fs from 'node:fs'

/** One kind of requester: how many users, their starting balance, how often they ask and for what. */
export interface RequesterClass {
  /** Label in the report (rich, earning, zero, indebted, anonymous, farmer...). */
  readonly name: string
  /** Users in the class; ignored (one shared account) when `anonymous`. */
  readonly users: number
  /** True: the class submits as the shared Anonymous account. */
  readonly anonymous: boolean
  /** Starting balance of each user, kudos (negative: debt). */
  readonly balance: number
  /** Submissions per second for the whole class (Poisson arrivals). */
  readonly ratePerSecond: number
  /** Characters of prompt per request. */
  readonly promptChars: number
  /** Output tokens asked for (`max_length`); the workers deliver exactly this many. */
  readonly maxLength: number
}

/** One worker process: a model, a speed, parallel slots, and the user who owns it. */
export interface WorkerSpec {
  readonly name: string
  /** Username of the owner: a user of a requester class (`<class>-<n>`) or a new account. */
  readonly owner: string
  readonly model: string
  /** Generation speed per thread, tokens per second. */
  readonly tokensPerSecond: number
  readonly threads: number
  readonly maxContextLength: number
}

/** A policy: a name and the broker settings it overrides. */
export interface Policy {
  readonly name: string
  readonly env: Readonly<Record<string, string>>
}

export interface Scenario {
  readonly name: string
  readonly description: string
  /** Seconds of arrivals per policy (wall clock, time compressed by `env`). */
  readonly durationSeconds: number
  /** Seconds after the arrivals stop for the queue to drain before the figures are read. */
  readonly drainSeconds: number
  /** Width of the report's time buckets, in seconds. */
  readonly bucketSeconds: number
  /** Random seed for arrivals, so two policies see the same load. */
  readonly seed: number
  /** Broker settings shared by every policy (time compression, limits). */
  readonly env: Readonly<Record<string, string>>
  readonly policies: readonly Policy[]
  readonly requesters: readonly RequesterClass[]
  readonly workers: readonly WorkerSpec[]
}

export class ScenarioError extends Error {
  override name = 'ScenarioError'
}

type Json = Record<string, unknown>

function fail(file: string, at: string, detail: string): never {
  throw new ScenarioError(`${file}: ${at}: ${detail}`)
}

function obj(file: string, at: string, value: unknown, allowed: readonly string[]): Json {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail(file, at, 'expected an object')
  for (const key of Object.keys(value)) if (!allowed.includes(key)) fail(file, `${at}.${key}`, `unknown field (allowed: ${allowed.join(', ')})`)
  return value as Json
}

function num(file: string, at: string, value: unknown, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(file, at, `expected a number, got ${JSON.stringify(value)}`)
  if (value < min || value > max) fail(file, at, `expected ${min}..${max}, got ${value}`)
  return value
}

function str(file: string, at: string, value: unknown, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'string' || value === '') fail(file, at, `expected a non-empty string, got ${JSON.stringify(value)}`)
  return value
}

function env(file: string, at: string, value: unknown): Record<string, string> {
  if (value === undefined) return {}
  const record = obj(file, at, value, Object.keys(value as object))
  for (const [key, v] of Object.entries(record)) if (typeof v !== 'string') fail(file, `${at}.${key}`, 'expected a string (environment values are strings)')
  return record as Record<string, string>
}

function list(file: string, at: string, value: unknown): unknown[] {
  if (!Array.isArray(value) || value.length === 0) fail(file, at, 'expected a non-empty array')
  return value
}

/** Checks a parsed scenario; `file` names it in errors. */
export function parseScenario(raw: unknown, file = 'scenario'): Scenario {
  const top = obj(file, '$', raw, ['$comment', 'name', 'description', 'durationSeconds', 'drainSeconds', 'bucketSeconds', 'seed', 'env', 'policies', 'requesters', 'workers'])
  const requesters = list(file, '$.requesters', top.requesters).map((value, i): RequesterClass => {
    const at = `$.requesters[${i}]`
    const r = obj(file, at, value, ['name', 'users', 'anonymous', 'balance', 'ratePerSecond', 'promptChars', 'maxLength'])
    if (r.anonymous !== undefined && typeof r.anonymous !== 'boolean') fail(file, `${at}.anonymous`, 'expected true or false')
    const name = str(file, `${at}.name`, r.name)
    if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) fail(file, `${at}.name`, 'expected lower-case letters, digits and dashes')
    return {
      name,
      anonymous: r.anonymous === true,
      users: r.anonymous === true ? 1 : num(file, `${at}.users`, r.users, 1, 200),
      balance: num(file, `${at}.balance`, r.balance, -1e9, 1e9, 0),
      ratePerSecond: num(file, `${at}.ratePerSecond`, r.ratePerSecond, 0, 500),
      promptChars: num(file, `${at}.promptChars`, r.promptChars, 1, 100_000),
      maxLength: num(file, `${at}.maxLength`, r.maxLength, 1, 4096),
    }
  })
  const names = requesters.map((r) => r.name)
  if (new Set(names).size !== names.length) fail(file, '$.requesters', 'class names must be unique')
  if (requesters.filter((r) => r.anonymous).length > 1) fail(file, '$.requesters', 'at most one anonymous class (there is one Anonymous account)')
  const workers = list(file, '$.workers', top.workers).map((value, i): WorkerSpec => {
    const at = `$.workers[${i}]`
    const w = obj(file, at, value, ['name', 'owner', 'model', 'tokensPerSecond', 'threads', 'maxContextLength'])
    return {
      name: str(file, `${at}.name`, w.name),
      owner: str(file, `${at}.owner`, w.owner),
      model: str(file, `${at}.model`, w.model),
      tokensPerSecond: num(file, `${at}.tokensPerSecond`, w.tokensPerSecond, 1, 100_000),
      threads: num(file, `${at}.threads`, w.threads, 1, 64, 1),
      maxContextLength: num(file, `${at}.maxContextLength`, w.maxContextLength, 80, 262_144, 4096),
    }
  })
  const policies = list(file, '$.policies', top.policies).map((value, i): Policy => {
    const p = obj(file, `$.policies[${i}]`, value, ['name', 'env'])
    return { name: str(file, `$.policies[${i}].name`, p.name), env: env(file, `$.policies[${i}].env`, p.env) }
  })
  if (new Set(policies.map((p) => p.name)).size !== policies.length) fail(file, '$.policies', 'policy names must be unique')
  return {
    name: str(file, '$.name', top.name),
    description: top.description === undefined || top.description === '' ? '' : str(file, '$.description', top.description),
    durationSeconds: num(file, '$.durationSeconds', top.durationSeconds, 1, 600),
    drainSeconds: num(file, '$.drainSeconds', top.drainSeconds, 0, 600, 5),
    bucketSeconds: num(file, '$.bucketSeconds', top.bucketSeconds, 0.5, 600, 5),
    seed: num(file, '$.seed', top.seed, 0, 2 ** 31, 1),
    env: env(file, '$.env', top.env),
    policies,
    requesters,
    workers,
  }
}

/** Reads and checks a scenario file. */
export function loadScenario(file: string): Scenario {
  let text: string
  try { text = fs.readFileSync(file, 'utf8') } catch (error) { throw new ScenarioError(`${file}: cannot read: ${(error as Error).message}`) }
  let raw: unknown
  try { raw = JSON.parse(text) } catch (error) { throw new ScenarioError(`${file}: not JSON: ${(error as Error).message}`) }
  return parseScenario(raw, file)
}
