import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import { createAccounts } from '../src/accounts/accounts.js'
import { ANONYMOUS_ID, DB_FILE, openDb, type OpenedDb } from '../src/db/open.js'
import { auditLedger, NotALedgerError } from '../src/ledger/audit.js'
import { createLedger, type Ledger } from '../src/ledger/ledger.js'
import { createTransfers } from '../src/ledger/transfers.js'
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js'
import { createSqliteAuditStore, openAuditStore } from '../src/store/sqlite/audit.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

interface Fixture {
  dir: string
  file: string
  opened: OpenedDb
  store: SqliteStore
  ledger: Ledger
  ids: { alice: number; bob: number; carol: number }
  /** Records a request and, for a paid one, its settlement, as the broker does: in one transaction. */
  settle(id: string, options: { requester: number; workerOwner: number; state: string; kudos: number | null; post?: boolean }): Promise<void>
  /** Runs raw SQL against the file, as someone editing it by hand would. */
  sql(query: string, ...params: unknown[]): void
}

/**
 * A ledger with every kind of entry: an award, two transfers, an uptime batch, settlements
 * of done and cancelled requests (one by the Anonymous account, which goes into debt),
 * and unpaid failed, expired and waiting requests.
 */
async function buildLedger(t: Test): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-audit-'))
  const file = path.join(dir, DB_FILE)
  const opened = openDb(file)
  const store = createSqliteStore(opened)
  t.teardown(async () => {
    if (opened.sqlite.open) await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const ledger = createLedger(store)
  const accounts = createAccounts(store)
  const transfers = createTransfers(store, { maxKudos: 1e9 })
  const alice = (await accounts.register('alice')).user.id
  const bob = (await accounts.register('bob')).user.id
  const carol = (await accounts.register('carol', { roles: ['moderator'] })).user.id

  // Any state, 'expired' included (which the broker no longer writes): the row is written by
  // hand, its settlement through the store, in one transaction.
  const insertRequest = opened.sqlite.prepare('insert into requests (id, user_id, state, prompt, params, created_at, kudos) values (?, ?, ?, ?, ?, ?, ?)')
  const settle: Fixture['settle'] = async (id, { requester, workerOwner, state, kudos, post = kudos !== null && kudos > 0 }) => {
    await store.committer.run((scope) => {
      insertRequest.run(id, requester, state, 'Once upon a time', JSON.stringify({ max_length: 80 }), Date.now(), kudos)
      if (post) {
        scope.post({
          kind: 'generation',
          ref: id,
          postings: [
            { userId: requester, amount: -(kudos ?? 0), category: 'spent', counterpartyId: workerOwner },
            { userId: workerOwner, amount: kudos ?? 0, category: 'generation', counterpartyId: requester },
          ],
        })
      }
    })
  }

  await transfers.award({ actorId: carol, to: 'alice', amount: 100, memo: 'welcome' })
  await transfers.transfer({ senderId: alice, to: 'bob', amount: '12.5', idempotencyKey: 'k1' })
  await transfers.transfer({ senderId: alice, to: bob, amount: 0.25, idempotencyKey: 'k2', memo: 'thanks' })
  await ledger.post({ kind: 'uptime', ref: 'worker-1:1', postings: [{ userId: bob, amount: 157_860, category: 'uptime' }] })
  await settle('req-done', { requester: alice, workerOwner: bob, state: 'done', kudos: 10_590 })
  await settle('req-cancelled', { requester: carol, workerOwner: bob, state: 'cancelled', kudos: 2_100 })
  await settle('req-anon', { requester: ANONYMOUS_ID, workerOwner: bob, state: 'done', kudos: 17_210 })
  await settle('req-failed', { requester: alice, workerOwner: bob, state: 'failed', kudos: null })
  await settle('req-expired', { requester: alice, workerOwner: bob, state: 'expired', kudos: null })
  await settle('req-waiting', { requester: bob, workerOwner: bob, state: 'waiting', kudos: null })

  return {
    dir, file, opened, store, ledger, ids: { alice, bob, carol }, settle,
    sql: (query, ...params) => { opened.sqlite.prepare(query).run(...params) },
  }
}

/** Audits the file through its own read-only handle, as the command does. */
async function auditFile(file: string) {
  const { audit, close } = openAuditStore(file)
  try {
    return await auditLedger(audit)
  } finally {
    close()
  }
}

function runCli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/audit-ledger.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

t.test('a clean ledger with awards, transfers, uptime and settlements audits ok', async (t) => {
  const fixture = await buildLedger(t)
  const report = await auditFile(fixture.file)
  t.same(report.problems, [])
  t.equal(report.ok, true)
  t.equal(report.users, 4, 'Anonymous, alice, bob, carol')
  t.equal(report.entries, 7, 'award, 2 transfers, uptime, 3 settlements')
  t.equal(report.postings, 12)
  t.equal(report.minted, 100_000 + 157_860)
  t.equal(report.sumBalances, report.minted)
  t.equal((await fixture.ledger.account(ANONYMOUS_ID))?.balance, -17_210, 'the Anonymous account is in debt, and that is sound')
  t.same(await auditLedger(fixture.store.audit), report, 'the broker\'s own read-write handle gives the same report')
})

t.test('an empty database (only the Anonymous account) audits ok', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-audit-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  openDb(path.join(dir, DB_FILE)).close()
  t.same(await auditFile(path.join(dir, DB_FILE)), { ok: true, users: 1, entries: 0, postings: 0, minted: 0, sumBalances: 0, problems: [] })
})

interface Corruption {
  name: string
  corrupt(fixture: Fixture): unknown
  /** Every one of these must be among the problems. */
  expect: RegExp[]
  /** The exact number of problems, when the corruption should be reported once and nowhere else. */
  count?: number
}

const corruptions: Corruption[] = [
  {
    name: 'a balance row edited',
    corrupt: (f) => f.sql('update balances set balance = balance + 1000 where user_id = ?', f.ids.bob),
    expect: [
      /^user \d+ \(bob\): balance is 201\.510 kudos, but its postings sum to 200\.510 \(off by 1\.000\)$/,
      /^mint invariant broken: balances sum to 258\.860 kudos, but entries minted 257\.860 \(off by 1\.000\)$/,
    ],
    count: 2,
  },
  {
    name: 'a category total edited',
    corrupt: (f) => f.sql('update balances set sent = sent + 1 where user_id = ?', f.ids.alice),
    expect: [/^user \d+ \(alice\): sent total is 12\.751 kudos, but its sent postings add up to 12\.750 \(off by 0\.001\)$/],
    count: 1,
  },
  {
    name: 'a posting deleted',
    corrupt: (f) => f.sql(`delete from postings where category = 'received' and amount = 12500`),
    expect: [
      /^user \d+ \(bob\): balance is 200\.510 kudos, but its postings sum to 188\.010 \(off by 12\.500\)$/,
      /^user \d+ \(bob\): received total is 12\.750 kudos, but its received postings add up to 0\.250 \(off by 12\.500\)$/,
      /^entry \d+ \(transfer, ref \d+:k1\) is unbalanced: its postings sum to -12\.500 kudos, expected its minted 0\.000$/,
      /^transfer \d+ \(12\.500 kudos from user \d+ \(alice\) to user \d+ \(bob\)\): entry \d+ takes 12\.500 from the sender and gives 0\.000 to the recipient in 1 posting\(s\)/,
    ],
    count: 4,
  },
  {
    name: 'a settlement whose amount differs from requests.kudos',
    corrupt: (f) => f.sql(`update requests set kudos = kudos + 500 where id = 'req-done'`),
    expect: [/^request req-done \(done\): settlement entry \d+ credits 10\.590 kudos to the worker's owner and charges 10\.590, expected requests\.kudos 11\.090 for both$/],
    count: 1,
  },
  {
    name: 'a generation entry for a failed request',
    corrupt: (f) => f.ledger.post({
      kind: 'generation', ref: 'req-failed',
      postings: [{ userId: f.ids.alice, amount: -3000, category: 'spent' }, { userId: f.ids.bob, amount: 3000, category: 'generation' }],
    }),
    expect: [/^generation entry \d+ settles request req-failed, which is failed: a failed or expired request pays nothing \(it moved 3\.000 kudos\)$/],
    count: 1,
  },
  {
    name: 'generation entries for an expired, a waiting and an unknown request',
    corrupt: async (f) => {
      for (const ref of ['req-expired', 'req-waiting', 'req-nowhere']) {
        await f.ledger.post({ kind: 'generation', ref, postings: [{ userId: f.ids.alice, amount: -1000, category: 'spent' }, { userId: f.ids.bob, amount: 1000, category: 'generation' }] })
      }
    },
    expect: [
      /^generation entry \d+ settles request req-expired, which is expired: a failed or expired request pays nothing/,
      /^generation entry \d+ settles request req-waiting, which is waiting: only done or cancelled requests are settled/,
      /^generation entry \d+ settles request req-nowhere, which does not exist \(it moved 1\.000 kudos\)$/,
    ],
    count: 3,
  },
  {
    name: 'a paid request with no settlement',
    corrupt: (f) => f.settle('req-unpaid', { requester: f.ids.alice, workerOwner: f.ids.bob, state: 'done', kudos: 3000, post: false }),
    expect: [/^request req-unpaid \(done\) records 3\.000 kudos paid, but has no generation entry$/],
    count: 1,
  },
  {
    name: 'a duplicate settlement (in a file that lost its unique index)',
    corrupt: async (f) => {
      f.sql('drop index ledger_entries_kind_ref')
      await f.ledger.post({ kind: 'generation', ref: 'req-done', postings: [{ userId: f.ids.alice, amount: -10_590, category: 'spent' }, { userId: f.ids.bob, amount: 10_590, category: 'generation' }] })
    },
    expect: [/^request req-done is settled 2 times: generation entries \d+, \d+$/],
    count: 1,
  },
  {
    name: 'a settlement with no ref (the ledger refuses one; written behind its back), which the unique index lets through twice',
    corrupt: (f) => {
      for (let i = 0; i < 2; i++) {
        const entry = f.opened.sqlite.prepare(`insert into ledger_entries (kind, minted, created_at) values ('generation', 0, 0) returning id`).get() as { id: number }
        f.sql('insert into postings (entry_id, user_id, amount, category, created_at) values (?, ?, -1000, \'spent\', 0)', entry.id, f.ids.alice)
        f.sql('insert into postings (entry_id, user_id, amount, category, created_at) values (?, ?, 1000, \'generation\', 0)', entry.id, f.ids.bob)
        f.sql('update balances set balance = balance - 1000, spent = spent + 1000 where user_id = ?', f.ids.alice)
        f.sql('update balances set balance = balance + 1000, earned_generation = earned_generation + 1000 where user_id = ?', f.ids.bob)
      }
    },
    expect: [/^generation entry \d+ has no ref: it settles no request/],
    count: 2,
  },
  {
    name: 'a settlement charged to someone other than the requester',
    corrupt: (f) => {
      f.sql(`update postings set user_id = ? where category = 'spent' and entry_id = (select id from ledger_entries where ref = 'req-cancelled')`, f.ids.alice)
      f.sql('update balances set balance = balance + 2100, spent = spent - 2100 where user_id = ?', f.ids.carol)
      f.sql('update balances set balance = balance - 2100, spent = spent + 2100 where user_id = ?', f.ids.alice)
    },
    expect: [/^request req-cancelled: settlement entry \d+ charges user \d+ \(alice\), but the request belongs to user \d+ \(carol\)$/],
    count: 1,
  },
  {
    name: 'an unbalanced entry, even with the balance rows forged to match',
    corrupt: (f) => {
      const entry = f.opened.sqlite.prepare(`insert into ledger_entries (kind, minted, created_at) values ('award', 0, 0) returning id`).get() as { id: number }
      f.sql(`insert into postings (entry_id, user_id, amount, category, created_at) values (?, ?, 1000, 'awarded', 0)`, entry.id, f.ids.bob)
      f.sql('update balances set balance = balance + 1000, awarded = awarded + 1000 where user_id = ?', f.ids.bob)
    },
    expect: [
      /^entry \d+ \(award\) is unbalanced: its postings sum to 1\.000 kudos, expected its minted 0\.000$/,
      /^mint invariant broken: balances sum to 258\.860 kudos, but entries minted 257\.860 \(off by 1\.000\)$/,
    ],
    count: 2,
  },
  {
    name: 'a generation entry that mints',
    corrupt: (f) => f.sql(`update ledger_entries set minted = 5 where ref = 'req-done'`),
    expect: [
      /^entry \d+ \(generation, ref req-done\) mints 0\.005 kudos, but generation entries only move kudos \(expected minted 0\.000\)$/,
      /^entry \d+ \(generation, ref req-done\) is unbalanced: its postings sum to 0\.000 kudos, expected its minted 0\.005$/,
      /^mint invariant broken/,
    ],
    count: 3,
  },
  {
    name: 'a posting whose sign was flipped, totals kept',
    corrupt: (f) => {
      f.sql(`update postings set amount = -amount where category = 'uptime'`)
      f.sql('update balances set balance = balance - 2 * 157860 where user_id = ?', f.ids.bob)
    },
    expect: [
      /^posting \d+ of entry \d+ \(uptime, ref worker-1:1\): uptime -157\.860 kudos for user \d+ \(bob\), but uptime entries post only uptime \(positive\)$/,
      /^entry \d+ \(uptime, ref worker-1:1\) is unbalanced/,
      /^mint invariant broken/,
    ],
    count: 3,
  },
  {
    name: 'a transfer row edited',
    corrupt: (f) => f.sql(`update transfers set amount = amount + 1 where idempotency_key = 'k2'`),
    expect: [/^transfer \d+ \(0\.251 kudos from user \d+ \(alice\) to user \d+ \(bob\)\): entry \d+ takes 0\.250 from the sender and gives 0\.250 to the recipient in 2 posting\(s\), expected exactly 0\.251 each way in 2 postings$/],
    count: 1,
  },
  {
    name: 'a transfer row deleted',
    corrupt: (f) => f.sql(`delete from transfers where idempotency_key = 'k1'`),
    expect: [/^entry \d+ \(transfer, ref \d+:k1\) has no transfers row$/],
    count: 1,
  },
  {
    name: 'a transfer row pointing at another transfer\'s entry',
    corrupt: (f) => f.sql(`update transfers set entry_id = (select entry_id from transfers where idempotency_key = 'k1') where idempotency_key = 'k2'`),
    expect: [
      /^transfer \d+ \(0\.250 kudos .*\): entry \d+ has ref "\d+:k1", expected "\d+:k2"$/,
      /^transfers \d+, \d+ share entry \d+/,
      /^entry \d+ \(transfer, ref \d+:k2\) has no transfers row$/,
    ],
  },
  {
    name: 'a user whose balance row is missing',
    corrupt: (f) => {
      f.sql('pragma foreign_keys = off')
      f.sql('delete from balances where user_id = ?', f.ids.carol)
    },
    expect: [/^user \d+ \(carol\): 1 posting\(s\) summing to -2\.100 kudos, but no balances row$/, /^mint invariant broken/],
    count: 2,
  },
]

for (const corruption of corruptions) {
  t.test(`detected: ${corruption.name}`, async (t) => {
    const fixture = await buildLedger(t)
    t.equal((await auditFile(fixture.file)).ok, true, 'sound before')
    await corruption.corrupt(fixture)
    const report = await auditFile(fixture.file)
    t.equal(report.ok, false)
    for (const pattern of corruption.expect) {
      t.ok(report.problems.some((problem) => pattern.test(problem)), `reports ${pattern}`, { problems: report.problems })
    }
    if (corruption.count !== undefined) t.equal(report.problems.length, corruption.count, 'and nothing else', { problems: report.problems })
  })
}

t.test('a file that is not a horde database is refused, not audited', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-audit-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const sqlite = new Database(path.join(dir, 'other.sqlite'))
  t.teardown(() => sqlite.close())
  sqlite.exec('create table users (id integer primary key)')
  const audit = createSqliteAuditStore(sqlite)
  await t.rejects(auditLedger(audit), NotALedgerError)
  await t.rejects(auditLedger(audit), /no table balances, ledger_entries, postings, transfers, requests/)
})

t.test('the audit-ledger command', async (t) => {
  const clean = await buildLedger(t)
  await clean.store.close()
  const broken = await buildLedger(t)
  broken.sql('update balances set balance = balance + 1000 where user_id = ?', broken.ids.bob)

  await t.test('exits 0 on a sound ledger and prints a summary', async (t) => {
    const run = runCli(['--db', clean.file])
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, /users\s+4\n/)
    t.match(run.stdout, /minted\s+257\.860 kudos\n/)
    t.match(run.stdout, /sum of balances\s+257\.860 kudos\n/)
    t.match(run.stdout, /problems\s+0\n/)
    t.match(run.stdout, /^OK:/m)
  })

  await t.test('exits 1 on a corrupted ledger (open by a writer) and prints every problem', async (t) => {
    const run = runCli(['--db', broken.file])
    t.equal(run.code, 1, run.stderr)
    t.match(run.stdout, /problems\s+2\n/)
    t.match(run.stdout, /^FAILED: 2 problem\(s\):$/m)
    t.match(run.stdout, /^ {2}- user \d+ \(bob\): balance is 201\.510 kudos, but its postings sum to 200\.510 \(off by 1\.000\)$/m)
    t.match(run.stdout, /^ {2}- mint invariant broken/m)
  })

  await t.test('--json prints the report', async (t) => {
    const good = runCli(['--db', clean.file, '--json'])
    t.equal(good.code, 0, good.stderr)
    t.same(JSON.parse(good.stdout), { database: clean.file, ok: true, users: 4, entries: 7, postings: 12, minted: 257_860, sumBalances: 257_860, problems: [] })
    const bad = runCli(['--json', `--db=${broken.file}`])
    t.equal(bad.code, 1)
    const report = JSON.parse(bad.stdout)
    t.equal(report.ok, false)
    t.equal(report.problems.length, 2)
  })

  await t.test('without --db it audits DATA_DIR/horde.sqlite, like the broker', async (t) => {
    const run = runCli([], { DATA_DIR: clean.dir })
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, new RegExp(`database\\s+${clean.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`))
  })

  await t.test('it never writes to the file', async (t) => {
    const before = fs.readFileSync(clean.file)
    runCli(['--db', clean.file])
    t.ok(fs.readFileSync(clean.file).equals(before))
  })

  await t.test('usage errors exit 2', async (t) => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-audit-'))
    t.teardown(() => fs.rmSync(empty, { recursive: true, force: true }))
    const notDb = path.join(empty, 'notes.txt')
    fs.writeFileSync(notDb, 'not a database, '.repeat(64))
    const otherDb = path.join(empty, 'other.sqlite')
    new Database(otherDb).exec('create table t (x)')
    const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
      ['no database file', ['--db', path.join(empty, 'missing.sqlite')], {}, /no database file at /],
      ['no database in DATA_DIR', [], { DATA_DIR: empty }, /no database file at .*horde\.sqlite/],
      ['a file that is not SQLite', ['--db', notDb], {}, /cannot audit .*not a database/],
      ['a SQLite file without the ledger', ['--db', otherDb], {}, /cannot audit .*not a horde-broker database/],
      ['an unknown option', ['--dbx', clean.file], {}, /Unknown option '--dbx'/],
      ['--db without a file', ['--db'], {}, /argument missing/],
      ['a stray argument', [clean.file], {}, /Unexpected argument/],
      ['a bad environment', [], { DATA_DIR: clean.dir, PORT: 'eighty' }, /Invalid PORT/],
    ]
    for (const [name, args, env, message] of cases) {
      const run = runCli(args, env)
      t.equal(run.code, 2, name)
      t.match(run.stderr, message, name)
      t.equal(run.stdout, '', `${name}: nothing on stdout`)
    }
    const help = runCli(['--help'])
    t.equal(help.code, 0)
    t.match(help.stdout, /Usage: npm run audit-ledger/)
  })
})
