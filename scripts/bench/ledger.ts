/**
 * Ledger transfers per second, durable (WAL, synchronous=FULL), in the bench process:
 * `createTransfers().transfer` (validation, idempotency, postings, balances, through the
 * SQLite store and its group commit, one transfer awaited at a time) against raw
 * better-sqlite3 running the same statements in the same immediate transaction.
 * Each on a fresh database file in the run's scratch folder (on disk, not tmpfs), measured
 * in alternating slices so that both see the same disk and the same neighbours.
 */
import Database from 'better-sqlite3'
import { createAccounts } from '../../src/accounts/accounts.js'
import { openDb } from '../../src/db/open.js'
import { toMilli } from '../../src/economy/amounts.js'
import { createLedger } from '../../src/ledger/ledger.js'
import { createTransfers } from '../../src/ledger/transfers.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'
import { figure, size, type BenchContext } from './common.js'

/** One side of the comparison: a transfer per call, on its own database. */
interface Side {
  transfer(key: string): void | Promise<void>
  close(): void | Promise<void>
}

/** Slices of this length alternate between the two sides, so that both see the same disk. */
const SLICE_MS = 100

export async function runLedger(ctx: BenchContext): Promise<void> {
  const durationMs = size(ctx.mode, 8000, 1500, 400)
  const sides = [await ledgerCode(`${ctx.dir}/ledger-code.sqlite`), await rawStatements(`${ctx.dir}/ledger-raw.sqlite`)]
  const counts = [0, 0]
  const times = [0, 0]
  try {
    for (let slice = 0; times[0] + times[1] < durationMs; slice++) {
      const i = slice % 2
      ctx.progress(`ledger: ${(times[0] + times[1]).toFixed(0)}/${durationMs} ms, ledger code and raw statements in alternating ${SLICE_MS} ms slices`)
      const start = performance.now()
      while (performance.now() - start < SLICE_MS) await sides[i].transfer(`k${++counts[i]}`)
      times[i] += performance.now() - start
    }
  } finally {
    for (const side of await Promise.all(sides)) await side.close()
  }
  ctx.record('ledger_transfers_per_s', figure(counts[0] / (times[0] / 1000), 'transfers/s', counts[1] / (times[1] / 1000)))
}

async function ledgerCode(file: string): Promise<Side> {
  const store = createSqliteStore(openDb(file, { synchronous: 'FULL' }))
  const ledger = createLedger(store)
  const accounts = createAccounts(store)
  const transfers = createTransfers(store, { maxKudos: 1e9 })
  const sender = (await accounts.register('sender')).user
  await accounts.register('recipient')
  await ledger.award({ userId: sender.id, amount: toMilli(1e9) })
  return {
    transfer: async (key) => { await transfers.transfer({ senderId: sender.id, to: 'recipient', amount: '0.5', idempotencyKey: key, memo: 'bench' }) },
    close: () => store.close(),
  }
}

/** The statements `transfer` runs, written by hand, prepared once. */
async function rawStatements(file: string): Promise<Side> {
  // The schema and the two users come from the same migrations; then only raw SQL.
  const setup = createSqliteStore(openDb(file, { synchronous: 'FULL' }))
  const accounts = createAccounts(setup)
  const sender = (await accounts.register('sender')).user
  await accounts.register('recipient')
  await setup.close()

  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.pragma('foreign_keys = ON')
  db.prepare('update balances set balance = ?, awarded = ? where user_id = ?').run(toMilli(1e9), toMilli(1e9), sender.id)
  const byName = db.prepare('select id, username from users where username_key = ?')
  const byId = db.prepare('select id, username from users where id = ?')
  const previous = db.prepare('select * from transfers where sender_id = ? and idempotency_key = ?')
  const balance = db.prepare('select balance from balances where user_id = ?')
  const entry = db.prepare('insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values (?, ?, 0, ?, ?, ?) on conflict do nothing returning id')
  const posting = db.prepare('insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values (?, ?, ?, ?, ?, ?)')
  const sent = db.prepare('update balances set balance = balance + ?, sent = sent + abs(?) where user_id = ? returning balance')
  const received = db.prepare('update balances set balance = balance + ?, received = received + abs(?) where user_id = ? returning balance')
  const transfer = db.prepare('insert into transfers (sender_id, recipient_id, amount, memo, idempotency_key, fingerprint, entry_id, created_at) values (?, ?, ?, ?, ?, ?, ?, ?) returning id')
  const amount = 500
  const run = db.transaction((key: string) => {
    const to = byName.get('recipient') as { id: number }
    byId.get(sender.id)
    if (previous.get(sender.id, key)) throw new Error('replay')
    balance.get(sender.id)
    const now = Date.now()
    const { id } = entry.get('transfer', `${sender.id}:${key}`, 'bench', sender.id, now) as { id: number }
    posting.run(id, sender.id, -amount, 'sent', to.id, now)
    sent.get(-amount, -amount, sender.id)
    posting.run(id, to.id, amount, 'received', sender.id, now)
    received.get(amount, amount, to.id)
    transfer.get(sender.id, to.id, amount, 'bench', key, 'fingerprint', id, now)
  })
  return { transfer: (key) => run.immediate(key), close: () => { db.close() } }
}
