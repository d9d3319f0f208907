/**
 * The ledger audit on PostgreSQL: the same checks and the same messages as the SQLite audit
 * (src/store/sqlite/audit.ts; what it checks: src/ledger/audit.ts), in PostgreSQL's SQL. It
 * only reads, inside one REPEATABLE READ READ ONLY transaction: live brokers keep writing
 * while the audit sees one snapshot. Comparisons run in SQL on 64-bit integers, so only rows
 * with a problem come back.
 */
import pg from 'pg'
import { formatKudos } from '../../economy/amounts.js'
import { AUDITED_TABLES, NotALedgerError, type AuditReport } from '../people-ports.js'
import { ENTRY_KINDS as KINDS, MOVING_KINDS, POSTING_RULES, SYSTEM_CATEGORIES, type EntryKind } from '../../economy/posting-rules.js'
import { UNFUNDED_ID } from '../../economy/anonymous.js'
import type { AccountRecord, AuditStore, TableCounts } from '../ports.js'
import { CATEGORY_COLUMN } from '../sqlite/ledger.js'
import { PG_ACCOUNT_COLUMNS } from './ledger.js'
import { createPool } from './open.js'

/** Request states in which a request has been paid for. */
const SETTLED_STATES = ['done', 'cancelled']

// SQL fragments built from the constants above (never from input).
const quote = (value: string) => `'${value.replaceAll("'", "''")}'`
const list = (values: readonly string[]) => values.map(quote).join(', ')
const COLUMNS = ['balance', ...Object.values(CATEGORY_COLUMN)]
const POSTING_FITS_KIND = KINDS.map((kind) => {
  const allowed = Object.entries(POSTING_RULES[kind]).map(([category, side]) =>
    `(p.category = ${quote(category)} and p.amount ${side === 'debit' ? '<=' : '>='} 0)`)
  return `(e.kind = ${quote(kind)} and (${allowed.join(' or ')}))`
}).join(' or ')

/** Runs `work` in one read-only snapshot on a connection of `pool`. */
async function inSnapshot<T>(pool: pg.Pool, work: (db: pg.ClientBase) => Promise<T>): Promise<T> {
  const db = await pool.connect()
  try {
    await db.query('begin isolation level repeatable read read only')
    const result = await work(db)
    await db.query('commit')
    return result
  } catch (error) {
    await db.query('rollback').catch(() => undefined)
    throw error
  } finally {
    db.release()
  }
}

/** Audits the ledger in the database behind `pool` in one snapshot; writes nothing. */
export function runPgAudit(pool: pg.Pool): Promise<AuditReport> {
  return inSnapshot(pool, audit)
}

async function audit(db: pg.ClientBase): Promise<AuditReport> {
  const present = new Set((await db.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = current_schema()`)).rows.map((row) => row.name))
  const missing = AUDITED_TABLES.filter((table) => !present.has(table))
  if (missing.length > 0) throw new NotALedgerError(`not a horde-broker database: no table ${missing.join(', ')}`)

  const all = async <T>(query: string) => (await db.query(query)).rows as T[]
  const one = async (query: string) => (await db.query<{ v: number }>(query)).rows[0].v
  const names = new Map((await all<{ id: number; username: string }>('select id, username from users')).map((u) => [u.id, u.username]))
  const who = (id: number) => {
    const name = names.get(id)
    return name === undefined ? `user ${id} (no such user)` : `user ${id} (${name})`
  }
  const k = formatKudos
  const problems: string[] = []

  // 1. Balance rows against the replay of their postings.
  const replayColumns = Object.entries(CATEGORY_COLUMN)
    .map(([category, column]) => `sum(case when category = ${quote(category)} then abs(amount) else 0 end) as ${column}`)
  const balanceRows = await all<Record<string, number>>(`
    with replay as (select user_id, sum(amount) as balance, ${replayColumns.join(', ')} from postings group by user_id)
    select b.user_id as user_id, ${COLUMNS.map((c) => `b.${c} as stored_${c}, coalesce(r.${c}, 0) as replayed_${c}`).join(', ')}
    from balances b left join replay r on r.user_id = b.user_id
    where ${COLUMNS.map((c) => `b.${c} is distinct from coalesce(r.${c}, 0)`).join(' or ')}
    order by b.user_id`)
  for (const row of balanceRows) {
    for (const column of COLUMNS) {
      const stored = row[`stored_${column}`]
      const replayed = row[`replayed_${column}`]
      if (stored === replayed) continue
      const what = column === 'balance' ? 'balance' : `${column} total`
      const from = column === 'balance' ? 'its postings sum to' : `its ${categoryOf(column)} postings add up to`
      problems.push(`${who(row.user_id)}: ${what} is ${k(stored)} kudos, but ${from} ${k(replayed)} (off by ${k(stored - replayed)})`)
    }
  }
  for (const row of await all<{ user_id: number; n: number; total: number }>(`
    select user_id, count(*) as n, sum(amount) as total from postings p
    where not exists (select 1 from balances b where b.user_id = p.user_id) group by user_id order by user_id`)) {
    problems.push(`${who(row.user_id)}: ${row.n} posting(s) summing to ${k(row.total)} kudos, but no balances row`)
  }
  for (const row of await all<{ id: number }>(`
    select id from users u where not exists (select 1 from balances b where b.user_id = u.id)
      and not exists (select 1 from postings p where p.user_id = u.id) order by id`)) {
    problems.push(`${who(row.id)}: no balances row (the ledger cannot post to this user)`)
  }
  for (const row of await all<{ user_id: number; balance: number }>(`
    select user_id, balance from balances b where not exists (select 1 from users u where u.id = b.user_id) order by user_id`)) {
    problems.push(`balances row for user ${row.user_id}, who does not exist (balance ${k(row.balance)} kudos)`)
  }

  // 2. The mint invariant.
  const minted = await one('select coalesce(sum(minted), 0) as v from ledger_entries')
  const sumBalances = await one('select coalesce(sum(balance), 0) as v from balances')
  if (minted !== sumBalances) {
    problems.push(`mint invariant broken: balances sum to ${k(sumBalances)} kudos, but entries minted ${k(minted)} (off by ${k(sumBalances - minted)})`)
  }

  // 3. Entries: kind, postings summing to minted, postings that fit the kind.
  for (const row of await all<{ id: number; kind: string; ref: string | null; minted: number; n: number; total: number }>(`
    select * from (select e.id, e.kind, e.ref, e.minted, count(p.id) as n, coalesce(sum(p.amount), 0) as total
      from ledger_entries e left join postings p on p.entry_id = e.id group by e.id) x
    where kind not in (${list(KINDS)}) or n = 0 or total != minted
      or (kind in (${list(MOVING_KINDS)}) and minted != 0)
    order by id`)) {
    const entry = describeEntry(row)
    if (!(KINDS as string[]).includes(row.kind)) problems.push(`${entry} has an unknown kind (expected one of ${KINDS.join(', ')})`)
    if (row.n === 0) problems.push(`${entry} has no postings`)
    if ((MOVING_KINDS as string[]).includes(row.kind) && row.minted !== 0) {
      problems.push(`${entry} mints ${k(row.minted)} kudos, but ${row.kind} entries only move kudos (expected minted 0.000)`)
    }
    if (row.total !== row.minted) problems.push(`${entry} is unbalanced: its postings sum to ${k(row.total)} kudos, expected its minted ${k(row.minted)}`)
  }
  for (const row of await all<{ id: number; entry_id: number; kind: string; ref: string | null; category: string; amount: number; user_id: number }>(`
    select p.id, p.entry_id, e.kind, e.ref, p.category, p.amount, p.user_id from postings p join ledger_entries e on e.id = p.entry_id
    where e.kind in (${list(KINDS)}) and not (${POSTING_FITS_KIND}) order by p.id`)) {
    const rules = Object.entries(POSTING_RULES[row.kind as EntryKind]).map(([category, side]) => `${category} (${side === 'debit' ? 'negative' : 'positive'})`)
    problems.push(`posting ${row.id} of ${describeEntry({ id: row.entry_id, kind: row.kind, ref: row.ref })}: ${row.category} ${k(row.amount)} kudos for ${who(row.user_id)}, but ${row.kind} entries post only ${rules.join(' and ')}`)
  }
  for (const row of await all<{ id: number; entry_id: number; user_id: number; amount: number }>(`
    select id, entry_id, user_id, amount from postings p where not exists (select 1 from ledger_entries e where e.id = p.entry_id) order by id`)) {
    problems.push(`posting ${row.id} (${k(row.amount)} kudos for ${who(row.user_id)}) belongs to entry ${row.entry_id}, which does not exist`)
  }

  // 4. Generation settlements: one per paid request, for exactly what it paid.
  for (const row of await all<{ ref: string; n: number; ids: string }>(`
    select ref, count(*) as n, string_agg(id::text, ', ' order by id) as ids from ledger_entries
    where kind = 'generation' and ref is not null group by ref having count(*) > 1 order by min(id)`)) {
    problems.push(`request ${row.ref} is settled ${row.n} times: generation entries ${row.ids}`)
  }
  for (const row of await all<{ id: number }>(`select id from ledger_entries where kind = 'generation' and ref is null order by id`)) {
    problems.push(`generation entry ${row.id} has no ref: it settles no request, and the (kind, ref) index cannot stop it from repeating`)
  }
  for (const row of await all<{ id: number; ref: string; found: number; state: string | null; kudos: number | null; requester: number | null; credit: number; unfunded: number; debit: number; payers: string | null; stranger: number }>(`
    select * from (select e.id, e.ref, r.id is not null as found, r.state, r.kudos, r.user_id as requester,
      coalesce(sum(case when p.category in ('generation', 'unfunded') then p.amount end), 0) as credit,
      coalesce(sum(case when p.category = 'unfunded' then p.amount end), 0) as unfunded,
      coalesce(sum(case when p.category = 'spent' then -p.amount end), 0) as debit,
      string_agg(distinct (case when p.category = 'spent' then p.user_id end)::text, ',') as payers,
      coalesce(sum(case when p.category = 'spent' and p.user_id is distinct from r.user_id then 1 else 0 end), 0) as stranger
      from ledger_entries e left join requests r on r.id = e.ref left join postings p on p.entry_id = e.id
      where e.kind = 'generation' and e.ref is not null group by e.id, r.id) x
    where not found or state not in (${list(SETTLED_STATES)}) or credit is distinct from coalesce(kudos, 0)
      or debit is distinct from coalesce(kudos, 0) or stranger > 0
    order by id`)) {
    if (!row.found) {
      problems.push(`generation entry ${row.id} settles request ${row.ref}, which does not exist (it moved ${k(row.credit)} kudos)`)
      continue
    }
    if (!SETTLED_STATES.includes(row.state ?? '')) {
      const why = row.state === 'failed' || row.state === 'expired' ? 'a failed or expired request pays nothing' : 'only done or cancelled requests are settled'
      problems.push(`generation entry ${row.id} settles request ${row.ref}, which is ${row.state}: ${why} (it moved ${k(row.credit)} kudos)`)
      continue
    }
    const expected = row.kudos ?? 0
    if (row.credit !== expected || row.debit !== expected) {
      const unfunded = row.unfunded > 0 ? ` and the system account (${k(row.unfunded)} of them unfunded)` : ''
      problems.push(`request ${row.ref} (${row.state}): settlement entry ${row.id} credits ${k(row.credit)} kudos to the worker's owner${unfunded} and charges ${k(row.debit)}, expected requests.kudos ${k(expected)} for both`)
    }
    if (row.stranger > 0) {
      problems.push(`request ${row.ref}: settlement entry ${row.id} charges ${(row.payers ?? '').split(',').map((id) => who(Number(id))).join(', ')}, but the request belongs to ${who(row.requester ?? -1)}`)
    }
  }
  for (const row of await all<{ id: string; state: string; kudos: number }>(`
    select id, state, kudos from requests r where state in (${list(SETTLED_STATES)}) and kudos > 0
      and not exists (select 1 from ledger_entries e where e.kind = 'generation' and e.ref = r.id) order by created_at, id`)) {
    problems.push(`request ${row.id} (${row.state}) records ${k(row.kudos)} kudos paid, but has no generation entry`)
  }
  for (const row of await all<{ id: string; state: string; kudos: number }>(`select id, state, kudos from requests where kudos < 0 order by created_at, id`)) {
    problems.push(`request ${row.id} (${row.state}) records a negative payment of ${k(row.kudos)} kudos`)
  }

  // Credits a payer's debt could not fund go to the system account, never to a person.
  for (const row of await all<{ id: number; entry_id: number; user_id: number; category: string; amount: number }>(`
    select id, entry_id, user_id, category, amount from postings where category in (${list(SYSTEM_CATEGORIES)}) and user_id != ${UNFUNDED_ID} order by id`)) {
    problems.push(`posting ${row.id} of entry ${row.entry_id}: ${row.category} ${k(row.amount)} kudos for ${who(row.user_id)}, but only the system account ${who(UNFUNDED_ID)} takes unfunded credits`)
  }

  // 5. Transfers: each row and its entry tell the same story.
  for (const row of await all<{ id: number; sender_id: number; recipient_id: number; amount: number; idempotency_key: string; entry_id: number; kind: string | null; ref: string | null; n: number; taken: number; given: number }>(`
    select * from (select t.id, t.sender_id, t.recipient_id, t.amount, t.idempotency_key, t.entry_id, e.id as found_entry, e.kind, e.ref,
      (select count(*) from postings p where p.entry_id = t.entry_id) as n,
      (select coalesce(sum(-p.amount), 0) from postings p where p.entry_id = t.entry_id and p.category = 'sent' and p.user_id = t.sender_id) as taken,
      (select coalesce(sum(p.amount), 0) from postings p where p.entry_id = t.entry_id and p.category = 'received' and p.user_id = t.recipient_id) as given
      from transfers t left join ledger_entries e on e.id = t.entry_id) x
    where found_entry is null or kind is distinct from 'transfer' or ref is distinct from (sender_id || ':' || idempotency_key)
      or n != 2 or taken != amount or given != amount or amount <= 0 or sender_id = recipient_id
    order by id`)) {
    const transfer = `transfer ${row.id} (${k(row.amount)} kudos from ${who(row.sender_id)} to ${who(row.recipient_id)})`
    if (row.kind === null) {
      problems.push(`${transfer} points to entry ${row.entry_id}, which does not exist`)
      continue
    }
    if (row.kind !== 'transfer') problems.push(`${transfer} points to entry ${row.entry_id}, a ${row.kind} entry, not a transfer`)
    const expectedRef = `${row.sender_id}:${row.idempotency_key}`
    if (row.ref !== expectedRef) problems.push(`${transfer}: entry ${row.entry_id} has ref ${JSON.stringify(row.ref)}, expected ${JSON.stringify(expectedRef)}`)
    if (row.n !== 2 || row.taken !== row.amount || row.given !== row.amount) {
      problems.push(`${transfer}: entry ${row.entry_id} takes ${k(row.taken)} from the sender and gives ${k(row.given)} to the recipient in ${row.n} posting(s), expected exactly ${k(row.amount)} each way in 2 postings`)
    }
    if (row.amount <= 0) problems.push(`${transfer} moves a non-positive amount`)
    if (row.sender_id === row.recipient_id) problems.push(`${transfer} is a transfer to oneself`)
  }
  for (const row of await all<{ entry_id: number; ids: string }>(`
    select entry_id, string_agg(id::text, ', ' order by id) as ids from transfers group by entry_id having count(*) > 1 order by entry_id`)) {
    problems.push(`transfers ${row.ids} share entry ${row.entry_id}: each transfer must have its own entry`)
  }
  for (const row of await all<{ id: number; kind: string; ref: string | null }>(`
    select id, kind, ref from ledger_entries where kind = 'transfer'
      and id not in (select entry_id from transfers where entry_id is not null) order by id`)) {
    problems.push(`${describeEntry(row)} has no transfers row`)
  }

  return {
    ok: problems.length === 0,
    users: await one('select count(*) as v from users'),
    entries: await one('select count(*) as v from ledger_entries'),
    postings: await one('select count(*) as v from postings'),
    minted,
    sumBalances,
    problems,
  }
}

function describeEntry(entry: { id: number; kind: string; ref: string | null }): string {
  return `entry ${entry.id} (${entry.kind}${entry.ref === null ? '' : `, ref ${entry.ref}`})`
}

function categoryOf(column: string): string {
  return Object.entries(CATEGORY_COLUMN).find(([, c]) => c === column)?.[0] ?? column
}

/** The audit and the read-only counts tests and tools use. */
export function createPgAuditStore(pool: pg.Pool): AuditStore {
  const one = async (query: string, ...params: unknown[]) => (await pool.query<{ n: number }>(query, params)).rows[0].n
  return {
    run() {
      return runPgAudit(pool)
    },
    counts(): Promise<TableCounts> {
      return inSnapshot(pool, async (db) => {
        const n = async (table: string) => (await db.query<{ n: number }>(`select count(*) as n from ${table}`)).rows[0].n
        return { users: await n('users'), entries: await n('ledger_entries'), postings: await n('postings'), transfers: await n('transfers'), requests: await n('requests') }
      })
    },
    async balances() {
      return (await pool.query<AccountRecord>(`select ${PG_ACCOUNT_COLUMNS} from balances order by user_id`)).rows
    },
    async countEntries(kind, ref) {
      return ref === undefined
        ? one('select count(*) as n from ledger_entries where kind = $1', kind)
        : one('select count(*) as n from ledger_entries where kind = $1 and ref = $2', kind, ref)
    },
    async mintedBy(kind) {
      return one('select coalesce(sum(minted), 0) as n from ledger_entries where kind = $1', kind)
    },
    async countTransfers(idempotencyKey) {
      return idempotencyKey === undefined
        ? one('select count(*) as n from transfers')
        : one('select count(*) as n from transfers where idempotency_key = $1', idempotencyKey)
    },
    async settlementsByRequest() {
      const rows = (await pool.query<{ ref: string; n: number }>("select ref, count(*) as n from ledger_entries where kind = 'generation' group by ref")).rows
      return new Map(rows.map((row) => [row.ref, row.n]))
    },
  }
}

/** Opens a database for the audit alone (the audit CLI): a small pool, no migrations, no writes. */
export function openPgAuditStore(url: string): { audit: AuditStore; close(): Promise<void> } {
  const pool = createPool(url, { max: 2 })
  return { audit: createPgAuditStore(pool), close: () => pool.end() }
}
