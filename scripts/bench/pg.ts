/**
 * PostgreSQL, durable (synchronous_commit on, the server's default), on a throwaway database
 * of the server at BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * created for the run and dropped after it. Each pair is measured in alternating slices, so
 * that both sides see the same disk and the same neighbours:
 * - the driver choice, node-postgres (`pg`) against postgres.js (`postgres`) on the store's
 *   hot statements: a transfer-shaped transaction one at a time, settle-shaped transactions
 *   32 in flight, and single-row reads 32 in flight (value: node-postgres, baseline:
 *   postgres.js, so a ratio above 1 favours node-postgres);
 * - durable transfers/s through the PostgreSQL store (`createTransfers().transfer`, its
 *   group commit) beside the same statements written by hand on node-postgres, one at a time
 *   and 32 in flight;
 * - jobs/s with the broker on PostgreSQL beside the same scenario on SQLite in this run.
 */
import pg from 'pg'
import postgres from 'postgres'
import { createAccounts } from '../../src/accounts/accounts.js'
import { toMilli } from '../../src/economy/amounts.js'
import { createLedger } from '../../src/ledger/ledger.js'
import { createTransfers } from '../../src/ledger/transfers.js'
import { createPool, PG_TYPES } from '../../src/store/postgres/open.js'
import { openPostgresStore } from '../../src/store/postgres/index.js'
import { figure, size, type BenchContext } from './common.js'
import { brokerJobs } from './streams.js'

/** The server the bench creates its databases on. */
const ADMIN_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres'
const SLICE_MS = 100
/** Calls in flight in the concurrent scenarios (the pools hold 8 connections, as the store's). */
const IN_FLIGHT = 32
const POOL = 8

/** One side of a comparison: `op(i)` is one call; `close` releases it. */
interface Side {
  op(i: number): Promise<unknown>
  close(): Promise<void>
}

/** Numbers the calls of the whole run: keys and request ids are never used twice, whichever scenario reuses a side. */
let serial = 0

/** Runs the two sides in alternating slices for `durationMs` in all, `inFlight` calls at a time; calls/s of each. */
async function alternate(ctx: BenchContext, label: string, sides: [Side, Side], durationMs: number, inFlight = 1): Promise<[number, number]> {
  const counts = [0, 0]
  const times = [0, 0]
  // Warm-up, not counted: every connection of both pools opened, every statement seen once.
  for (const side of sides) await Promise.all(Array.from({ length: Math.max(inFlight, POOL) }, () => side.op(++serial)))
  // At least one slice each, however long a slice takes on a loaded machine.
  for (let slice = 0; slice < 2 || times[0] + times[1] < durationMs; slice++) {
    const i = slice % 2
    ctx.progress(`${label}: ${(times[0] + times[1]).toFixed(0)}/${durationMs} ms in alternating ${SLICE_MS} ms slices`)
    const start = performance.now()
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (performance.now() - start < SLICE_MS) {
        await sides[i].op(++serial)
        counts[i]++
      }
    }))
    times[i] += performance.now() - start
  }
  return [counts[0] / (times[0] / 1000), counts[1] / (times[1] / 1000)]
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (error) {
    throw new Error(`the pg bench needs PostgreSQL at ${ADMIN_URL} (set BENCH_PG_URL): ${(error as Error).message}`)
  }
  try {
    return await work(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** A fresh database, migrated by the store (the schema every side uses); returns its URL and a dropper. */
export async function freshDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `hb_bench_${label}_${process.pid}_${Date.now().toString(36)}`
  await admin((client) => client.query(`create database ${name}`))
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  const store = await openPostgresStore(url.toString(), { max: 2 })
  await store.close()
  return { url: url.toString(), drop: () => admin(async (client) => { await client.query(`drop database if exists ${name} with (force)`) }) }
}

/** Two users with balance rows, the sender rich; plus `requests` waiting requests of the sender and a worker of the recipient. */
async function seed(url: string, requests: number): Promise<{ sender: number; recipient: number; worker: number }> {
  const client = new pg.Client({ connectionString: url, types: PG_TYPES })
  await client.connect()
  try {
    const user = async (name: string) => {
      const id = (await client.query<{ id: number }>(`insert into users (username, username_key, created_at, roles) values ($1, $1, 1, '[]') returning id`, [name])).rows[0].id
      await client.query('insert into balances (user_id) values ($1)', [id])
      return id
    }
    const sender = await user('sender')
    const recipient = await user('recipient')
    await client.query('update balances set balance = $1, awarded = $1 where user_id = $2', [toMilli(1e9), sender])
    await client.query('insert into ledger_entries (kind, minted, created_at) values ($1, $2, 1)', ['award', toMilli(1e9)])
    const worker = (await client.query<{ id: number }>(`insert into workers (name, owner_id, created_at) values ('w', $1, 1) returning id`, [recipient])).rows[0].id
    await client.query(`insert into requests (id, user_id, state, prompt, params, client_ip, created_at)
      select 'r' || g, $1, 'waiting', 'Once upon a time', '{}', '127.0.0.1', 1 from generate_series(1, $2) g`, [sender, requests])
    return { sender, recipient, worker }
  } finally {
    await client.end()
  }
}

/** The transfer's statements (those the store runs for `createTransfers().transfer`), on node-postgres. */
function pgTransfer(pool: pg.Pool, ids: { sender: number; recipient: number }, prefix: string): Side {
  return {
    async op(i) {
      const key = `${prefix}${i}`
      await pool.query('select id, username from users where username_key = $1', ['recipient'])
      await pool.query('select id, username, created_at, roles from users where id = $1', [ids.sender])
      await pool.query('select * from transfers where sender_id = $1 and idempotency_key = $2', [ids.sender, key])
      const db = await pool.connect()
      try {
        await db.query('begin')
        await db.query('select * from transfers where sender_id = $1 and idempotency_key = $2', [ids.sender, key])
        const now = Date.now()
        const entry = (await db.query<{ id: number }>(`insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values ('transfer', $1, 0, 'bench', $2, $3)
          on conflict do nothing returning id`, [`${ids.sender}:${key}`, ids.sender, now])).rows[0].id
        await db.query('update balances set balance = balance + $1, sent = sent + abs($1) where user_id = $2 and balance + $1 >= 0 returning balance', [-500, ids.sender])
        await db.query('update balances set balance = balance + $1, received = received + abs($1) where user_id = $2 returning balance', [500, ids.recipient])
        await db.query('insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values ($1, $2, $3, $4, $5, $6), ($1, $7, $8, $9, $10, $6)',
          [entry, ids.sender, -500, 'sent', ids.recipient, now, ids.recipient, 500, 'received', ids.sender])
        await db.query(`insert into transfers (sender_id, recipient_id, amount, memo, idempotency_key, fingerprint, entry_id, created_at)
          values ($1, $2, 500, 'bench', $3, 'fingerprint', $4, $5) returning id`, [ids.sender, ids.recipient, key, entry, now])
        await db.query('commit')
      } catch (error) {
        await db.query('rollback').catch(() => undefined)
        throw error
      } finally {
        db.release()
      }
    },
    close: () => pool.end(),
  }
}

/** The same statements on postgres.js (prepared, as postgres.js does by default). */
function jsTransfer(sql: postgres.Sql, ids: { sender: number; recipient: number }, prefix: string): Side {
  return {
    async op(i) {
      const key = `${prefix}${i}`
      await sql`select id, username from users where username_key = ${'recipient'}`
      await sql`select id, username, created_at, roles from users where id = ${ids.sender}`
      await sql`select * from transfers where sender_id = ${ids.sender} and idempotency_key = ${key}`
      await sql.begin(async (tx) => {
        await tx`select * from transfers where sender_id = ${ids.sender} and idempotency_key = ${key}`
        const now = Date.now()
        const [entry] = await tx`insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values ('transfer', ${`${ids.sender}:${key}`}, 0, 'bench', ${ids.sender}, ${now})
          on conflict do nothing returning id`
        await tx`update balances set balance = balance + ${-500}, sent = sent + abs(${-500}::bigint) where user_id = ${ids.sender} and balance + ${-500} >= 0 returning balance`
        await tx`update balances set balance = balance + ${500}, received = received + abs(${500}::bigint) where user_id = ${ids.recipient} returning balance`
        await tx`insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values
          (${entry.id}, ${ids.sender}, ${-500}, 'sent', ${ids.recipient}, ${now}), (${entry.id}, ${ids.recipient}, ${500}, 'received', ${ids.sender}, ${now})`
        await tx`insert into transfers (sender_id, recipient_id, amount, memo, idempotency_key, fingerprint, entry_id, created_at)
          values (${ids.sender}, ${ids.recipient}, 500, 'bench', ${key}, 'fingerprint', ${entry.id}, ${now}) returning id`
      })
    },
    close: () => sql.end(),
  }
}

/** A settle-shaped transaction (request row, payment entry, two balances, postings, worker counters) on node-postgres. */
function pgSettle(pool: pg.Pool, ids: { sender: number; recipient: number; worker: number }, offset: number): Side {
  return {
    async op(i) {
      const db = await pool.connect()
      try {
        await db.query('begin')
        const request = `r${offset + i}`
        const now = Date.now()
        await db.query(`update requests set state = 'done', text = $1, tokens = 40, kudos = 100, worker_id = $2, worker_name = 'w', model = 'm', finished_at = $3
          where id = $4 and state = 'waiting' returning id`, ['the end', ids.worker, now, request])
        const entry = (await db.query<{ id: number }>(`insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values ('generation', $1, 0, null, $2, $3)
          on conflict do nothing returning id`, [request, ids.recipient, now])).rows[0]?.id
        await db.query('update balances set balance = balance + $1, spent = spent + abs($1) where user_id = $2 returning balance', [-100, ids.sender])
        await db.query('update balances set balance = balance + $1, earned_generation = earned_generation + abs($1) where user_id = $2 returning balance', [100, ids.recipient])
        if (entry) {
          await db.query('insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values ($1, $2, $3, $4, $5, $6), ($1, $7, $8, $9, $10, $6)',
            [entry, ids.sender, -100, 'spent', ids.recipient, now, ids.recipient, 100, 'generation', ids.sender])
        }
        await db.query('update workers set jobs = jobs + 1, tokens = tokens + 40, earned = earned + 100 where id = $1', [ids.worker])
        await db.query('commit')
      } catch (error) {
        await db.query('rollback').catch(() => undefined)
        throw error
      } finally {
        db.release()
      }
    },
    close: () => pool.end(),
  }
}

function jsSettle(sql: postgres.Sql, ids: { sender: number; recipient: number; worker: number }, offset: number): Side {
  return {
    async op(i) {
      await sql.begin(async (tx) => {
        const request = `r${offset + i}`
        const now = Date.now()
        await tx`update requests set state = 'done', text = ${'the end'}, tokens = 40, kudos = 100, worker_id = ${ids.worker}, worker_name = 'w', model = 'm', finished_at = ${now}
          where id = ${request} and state = 'waiting' returning id`
        const [entry] = await tx`insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values ('generation', ${request}, 0, null, ${ids.recipient}, ${now})
          on conflict do nothing returning id`
        await tx`update balances set balance = balance + ${-100}, spent = spent + abs(${-100}::bigint) where user_id = ${ids.sender} returning balance`
        await tx`update balances set balance = balance + ${100}, earned_generation = earned_generation + abs(${100}::bigint) where user_id = ${ids.recipient} returning balance`
        if (entry) {
          await tx`insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values
            (${entry.id}, ${ids.sender}, ${-100}, 'spent', ${ids.recipient}, ${now}), (${entry.id}, ${ids.recipient}, ${100}, 'generation', ${ids.sender}, ${now})`
        }
        await tx`update workers set jobs = jobs + 1, tokens = tokens + 40, earned = earned + 100 where id = ${ids.worker}`
      })
    },
    close: () => sql.end(),
  }
}

/** Single-row reads by key: a balance (the account view), alternating between the two users. */
function pgRead(pool: pg.Pool, ids: { sender: number; recipient: number }): Side {
  return {
    op: (i) => pool.query('select balance, awarded, sent, received from balances where user_id = $1', [i % 2 ? ids.sender : ids.recipient]),
    close: () => pool.end(),
  }
}

function jsRead(sql: postgres.Sql, ids: { sender: number; recipient: number }): Side {
  return {
    op: async (i) => sql`select balance, awarded, sent, received from balances where user_id = ${i % 2 ? ids.sender : ids.recipient}`,
    close: () => sql.end(),
  }
}

/** `createTransfers().transfer` through the PostgreSQL store (reads on its pool, the write through its group commit). */
async function storeTransfer(url: string): Promise<Side> {
  const store = await openPostgresStore(url)
  const ledger = createLedger(store)
  const accounts = createAccounts(store)
  const transfers = createTransfers(store, { maxKudos: 1e9 })
  const sender = (await accounts.register('store-sender')).user
  await accounts.register('store-recipient')
  await ledger.award({ userId: sender.id, amount: toMilli(1e9) })
  return {
    op: (i) => transfers.transfer({ senderId: sender.id, to: 'store-recipient', amount: '0.5', idempotencyKey: `s${i}`, memo: 'bench' }),
    close: () => store.close(),
  }
}

const jsClient = (url: string) => postgres(url, { max: POOL, onnotice: () => undefined })

export async function runPg(ctx: BenchContext): Promise<void> {
  const durationMs = size(ctx.mode, 6000, 1500, 400)
  const settles = size(ctx.mode, 400_000, 100_000, 20_000)
  const drivers = await freshDatabase('drivers')
  const store = await freshDatabase('store')
  try {
    const ids = await seed(drivers.url, settles)
    const pair = (a: Side, b: Side): [Side, Side] => [a, b]

    let sides = pair(pgTransfer(createPool(drivers.url, { max: POOL }), ids, 'p'), jsTransfer(jsClient(drivers.url), ids, 'j'))
    let [a, b] = await alternate(ctx, 'pg drivers: transfer transactions, one at a time', sides, durationMs).finally(() => Promise.all(sides.map((s) => s.close())))
    ctx.record('pg_driver_transfer_tx_per_s', figure(a, 'tx/s', b))

    // The settles draw from one range of waiting requests: node-postgres the first half, postgres.js the second.
    sides = pair(pgSettle(createPool(drivers.url, { max: POOL }), ids, 0), jsSettle(jsClient(drivers.url), ids, settles / 2))
    ;[a, b] = await alternate(ctx, `pg drivers: settle transactions, ${IN_FLIGHT} in flight`, sides, durationMs, IN_FLIGHT).finally(() => Promise.all(sides.map((s) => s.close())))
    ctx.record('pg_driver_settle_tx_per_s_32', figure(a, 'tx/s', b))

    sides = pair(pgRead(createPool(drivers.url, { max: POOL }), ids), jsRead(jsClient(drivers.url), ids))
    ;[a, b] = await alternate(ctx, `pg drivers: single-row reads, ${IN_FLIGHT} in flight`, sides, durationMs, IN_FLIGHT).finally(() => Promise.all(sides.map((s) => s.close())))
    ctx.record('pg_driver_reads_per_s_32', figure(a, 'reads/s', b))

    const storeIds = await seed(store.url, 0)
    sides = pair(await storeTransfer(store.url), pgTransfer(createPool(store.url, { max: POOL }), storeIds, 'raw'))
    ;[a, b] = await alternate(ctx, 'pg store: transfers, one at a time', sides, durationMs)
    ctx.record('pg_transfers_per_s', figure(a, 'transfers/s', b))
    ;[a, b] = await alternate(ctx, `pg store: transfers, ${IN_FLIGHT} in flight`, sides, durationMs, IN_FLIGHT).finally(() => Promise.all(sides.map((s) => s.close())))
    ctx.record('pg_transfers_per_s_32', figure(a, 'transfers/s', b))
  } finally {
    await drivers.drop()
    await store.drop()
  }

  const jobs = await freshDatabase('jobs')
  try {
    const workers = size(ctx.mode, 100, 100, 10)
    const outstanding = size(ctx.mode, 50, 50, 5)
    const warmupMs = size(ctx.mode, 1000, 1000, 300)
    const measureMs = size(ctx.mode, 5000, 3000, 1000)
    ctx.progress('jobs per second: broker on PostgreSQL')
    const onPg = await brokerJobs(ctx, workers, outstanding, warmupMs, measureMs, { dataDir: `${ctx.dir}/jobs-pg`, prefix: 'jobspg', env: { DATABASE_URL: jobs.url } }).then((f) => f.rate)
    ctx.progress('jobs per second: broker on SQLite')
    const onSqlite = await brokerJobs(ctx, workers, outstanding, warmupMs, measureMs, { dataDir: `${ctx.dir}/jobs-sqlite`, prefix: 'jobssq' }).then((f) => f.rate)
    ctx.record('pg_jobs_per_s_100_workers', figure(onPg, 'jobs/s', onSqlite))
  } finally {
    await jobs.drop()
  }
}
