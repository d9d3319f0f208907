/**
 * Several real broker processes (CLUSTER=on) on one private Redis, one SESSION_SECRET and
 * one store: a shared SQLite data directory, or one PostgreSQL database. Each cross-process
 * scenario runs once per store (`eachStore`).
 */
import crypto from 'node:crypto'
import type { Test } from 'tap'
import { startTestRedis, tempDir, type TestLike } from './harness.js'
import { createTestDatabase } from './postgres.js'
import { startBrokerProcess, type BrokerProcess } from './processes.js'

export type StoreKind = 'sqlite' | 'postgres'
export const STORES: readonly StoreKind[] = ['sqlite', 'postgres']

export interface Cluster {
  readonly store: StoreKind
  readonly redisUrl: string
  /** The processes, started in parallel; all healthy. */
  readonly nodes: BrokerProcess[]
  /** SQLite file path or PostgreSQL URL (the same for every node), for the audit. */
  readonly database: string
}

export const ws = (node: BrokerProcess) => node.url.replace(/^http/, 'ws')

export async function startCluster(t: TestLike, store: StoreKind, count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const redis = await startTestRedis(t)
  const dataDir = tempDir('horde-cluster-')
  const shared: Record<string, string> = {
    ...env,
    CLUSTER: 'on',
    SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
  }
  // The shared data directory holds the SQLite file; with PostgreSQL it only holds the logs.
  if (store === 'postgres') shared.DATABASE_URL = await createTestDatabase(t, 'cluster')
  const first = await startBrokerProcess(t, { redisUrl: redis.url, dataDir: store === 'sqlite' ? dataDir : tempDir('horde-node-'), env: shared })
  // The first one runs the migrations; the others start together after it.
  const rest = await Promise.all(Array.from({ length: count - 1 }, () =>
    startBrokerProcess(t, { redisUrl: redis.url, dataDir: store === 'sqlite' ? dataDir : tempDir('horde-node-'), env: shared })))
  return { store, redisUrl: redis.url, nodes: [first, ...rest], database: first.database }
}

/** Runs `body` once on a shared SQLite file and once on PostgreSQL, as two subtests. */
export function eachStore(t: Test, name: string, count: number, env: Record<string, string>, body: (t: Test, cluster: Cluster) => Promise<void>): void {
  for (const store of STORES) {
    t.test(`${name} (${store})`, async (t) => body(t, await startCluster(t, store, count, env)))
  }
}
