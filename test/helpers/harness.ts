/**
 * Test harness: a private redis-server per test file, a broker on port 0 over a temp
 * data directory, and small HTTP helpers. Everything started is stopped in teardown.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createBroker, type Broker } from '../../src/broker.js'
import { loadConfig, type Config } from '../../src/config.js'
import { redisServerAvailable, startRedisServer, type RedisServer } from '../../src/redis/redis-server.js'
import { toMilli } from '../../src/economy/amounts.js'
import { DB_FILE } from '../../src/db/open.js'
import { createTestDatabase, testingOnPostgres } from './postgres.js'
import { resolveJobsWith } from './ws.js'

/** The subset of a tap test the harness needs. */
export interface TestLike {
  teardown(fn: () => unknown): void
  testdirName?: string
}

const cleanups = new WeakMap<TestLike, Array<() => unknown>>()

/** Registers clean-up work that runs last-in, first-out (a broker closes before its Redis stops). */
export function defer(t: TestLike, fn: () => unknown): void {
  let list = cleanups.get(t)
  if (!list) {
    const created: Array<() => unknown> = []
    cleanups.set(t, created)
    t.teardown(async () => {
      for (const cleanup of created.reverse()) await cleanup()
    })
    list = created
  }
  list.push(fn)
}

export function tempDir(prefix = 'horde-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

export async function startTestRedis(t: TestLike, options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
  if (!redisServerAvailable()) {
    throw new Error('These tests need redis-server on PATH (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis).')
  }
  const server = await startRedisServer({ dir: tempDir('horde-redis-'), appendOnly: options.appendOnly ?? true })
  defer(t, () => server.kill())
  return server
}

export interface TestBroker {
  broker: Broker
  config: Config
  /** http://127.0.0.1:PORT */
  url: string
  /** ws://127.0.0.1:PORT */
  wsUrl: string
  dataDir: string
  /** Where it stores: the SQLite file in `dataDir`, or the PostgreSQL URL (test/helpers/database.ts reads either). */
  database: string
  close(): Promise<void>
}

/**
 * With `HB_TEST_DATABASE=postgres` every broker stores in PostgreSQL: a database per data
 * directory (a broker restarted on the same directory finds its data again), dropped in teardown.
 */
const databaseOfDir = new Map<string, Promise<string>>()

export async function databaseEnv(t: TestLike, dataDir: string, env: Record<string, string> | undefined): Promise<Record<string, string>> {
  if (!testingOnPostgres() || env?.DATABASE_URL !== undefined) return {}
  let url = databaseOfDir.get(dataDir)
  if (!url) {
    url = createTestDatabase(t, 'broker')
    databaseOfDir.set(dataDir, url)
  }
  return { DATABASE_URL: await url }
}

export async function startBroker(t: TestLike, options: { redis: RedisServer; env?: Record<string, string>; dataDir?: string; clock?: { now(): number }; wallClock?: () => number }): Promise<TestBroker> {
  const dataDir = options.dataDir ?? tempDir()
  const database = await databaseEnv(t, dataDir, options.env)
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    REDIS_URL: options.redis.url,
    LOG_LEVEL: 'silent',
    // Tests register many users from one address.
    REGISTRATIONS_PER_MINUTE: '100000',
    LOGINS_PER_MINUTE: '100000',
    BAD_KEYS_PER_MINUTE: '100000',
    HTTP_CONNECTIONS_PER_IP: '100000',
    ...database,
    ...options.env,
  })
  const broker = await createBroker(config, { clock: options.clock, wallClock: options.wallClock })
  const url = await broker.listen()
  const forget = resolveJobsWith((job) => {
    for (const worker of broker.core.workforce.online) {
      const running = worker.jobs.get(job)
      if (running) return running.request
    }
    return undefined
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    forget()
    await broker.close()
  }
  defer(t, close)
  return { broker, config, url, wsUrl: url.replace(/^http/, 'ws'), dataDir, database: config.databaseUrl ?? path.join(dataDir, DB_FILE), close }
}

export interface ApiAnswer<T = any> {
  status: number
  body: T
  headers: Headers
}

/** A JSON call against the broker. `key` goes in the `apikey` header. */
export async function api<T = any>(base: string, method: string, route: string, options: { key?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {}): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.key) headers.apikey = options.key
  let body: string | undefined
  if (options.raw !== undefined) {
    body = options.raw
    headers['content-type'] ??= 'application/json'
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] = 'application/json'
  }
  const response = await fetch(base + route, { method, headers, body })
  const text = await response.text()
  let parsed: unknown = text
  try { parsed = text ? JSON.parse(text) : undefined } catch { /* not JSON */ }
  return { status: response.status, body: parsed as T, headers: response.headers }
}

export async function registerUser(base: string, username: string): Promise<{ id: number; username: string; key: string }> {
  const answer = await api(base, 'POST', '/v1/users', { body: { username } })
  if (answer.status !== 201) throw new Error(`register ${username}: ${answer.status} ${JSON.stringify(answer.body)}`)
  return { id: answer.body.id, username, key: answer.body.apikey }
}

/** Mints kudos for a user: the ledger's award (as a moderator's award would), for setting up balances. */
export async function grant(broker: Broker, userId: number, kudos: number): Promise<void> {
  await broker.services.ledger.award({ userId, amount: toMilli(kudos), memo: 'test set-up' })
}

/**
 * Sets a user's balance to exactly `kudos` (negative allowed): an award up; down, a transfer
 * to a sink account. No operation but a paid generation takes a balance below zero, so a
 * negative target is reached with a balanced transfer-kind entry to the sink instead (which
 * keeps the mint invariant true).
 */
export async function setBalance(broker: Broker, userId: number, kudos: number): Promise<void> {
  const { accounts, ledger, transfers } = broker.services
  const delta = toMilli(kudos) - ((await ledger.account(userId))?.balance ?? 0)
  if (delta > 0) await grant(broker, userId, delta / 1000)
  if (delta >= 0) return
  const sink = (await accounts.byName('test-sink')) ?? (await accounts.createUser('test-sink'))
  const ref = `set-balance-${userId}-${Date.now()}-${Math.random()}`
  // The Anonymous account cannot send transfers.
  if (kudos >= 0 && userId !== 0) {
    await transfers.transfer({ senderId: userId, to: sink.id, amount: String(-delta / 1000), idempotencyKey: ref, memo: 'test set-up' })
    return
  }
  await ledger.post({ kind: 'transfer', ref, memo: 'test set-up', postings: [
    { userId, amount: delta, category: 'sent', counterpartyId: sink.id },
    { userId: sink.id, amount: -delta, category: 'received', counterpartyId: userId },
  ] })
}

/** A user's balance in kudos, read from the ledger. */
export async function balanceOf(broker: Broker, userId: number): Promise<number> {
  return ((await broker.services.ledger.account(userId))?.balance ?? 0) / 1000
}

/** The mint invariant as the audit finds it: the sum of all balances against all kudos ever minted, and any problem. */
export async function ledgerInvariant(broker: Broker): Promise<{ sumBalances: number; minted: number; problems: string[] }> {
  const report = await broker.services.store.audit.run()
  return { sumBalances: report.sumBalances, minted: report.minted, problems: report.problems }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` until it returns a truthy value or the time is up. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) { last = error }
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}
