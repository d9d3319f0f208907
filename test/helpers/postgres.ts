/**
 * A throwaway PostgreSQL database per test (or per broker): created on the server at
 * `HB_TEST_PG_URL` (default postgres://postgres@127.0.0.1:5432/postgres, trust auth), named
 * after the branch, the test file and a random part, and dropped in teardown. When the
 * server does not answer, the test fails with a message saying how to start it: never a skip.
 */
import crypto from 'node:crypto'
import path from 'node:path'
import pg from 'pg'
import { defer, type TestLike } from './harness.js'

/** The maintenance database the test databases are created from. */
export const PG_ADMIN_URL = process.env.HB_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres'

const HOW_TO_START = 'These tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth). Start it with: ' +
  'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start (Debian/Ubuntu: apt-get install -y postgresql); ' +
  'or point HB_TEST_PG_URL at another server.'

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (error) {
    throw new Error(`${HOW_TO_START} (connecting to ${PG_ADMIN_URL} failed: ${(error as Error).message})`)
  }
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Creates an empty database and returns its URL; it is dropped when `t` ends (after anything deferred later). */
export async function createTestDatabase(t: TestLike, label = 'db'): Promise<string> {
  const file = path.basename(process.argv[1] ?? 'test', '.ts').replace(/\.test$/, '')
  const name = `hb_postgres_${`${file}_${label}`.toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 40)}_${crypto.randomBytes(4).toString('hex')}`
  await admin((client) => client.query(`create database ${name}`))
  defer(t, () => admin((client) => client.query(`drop database if exists ${name} with (force)`)))
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

/** True when the suite runs with the broker on PostgreSQL (`HB_TEST_DATABASE=postgres`). */
export const testingOnPostgres = () => process.env.HB_TEST_DATABASE === 'postgres'
