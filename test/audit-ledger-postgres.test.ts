/**
 * `npm run audit-ledger` on PostgreSQL: the same report and exit codes as on SQLite
 * (test/audit-ledger.test.ts), from `--database-url` or DATABASE_URL, against a database
 * created and dropped here; a corruption written behind the ledger's back is found, named
 * the way the SQLite audit names it.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { openPostgresStore } from '../src/store/postgres/index.js'
import { createTestDatabase } from './helpers/postgres.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function runCli(args: string[], env: Record<string, string> = {}) {
  const { DATABASE_URL: _ignored, ...parent } = process.env
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/audit-ledger.ts', ...args], {
    cwd: ROOT, env: { ...parent, ...env }, encoding: 'utf8', timeout: 60_000,
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

t.test('the audit CLI on a PostgreSQL database', async (t) => {
  const url = await createTestDatabase(t, 'audit')
  const store = await openPostgresStore(url)
  t.teardown(() => store.close())
  const { user: alice } = await store.accounts.createUser({ username: 'alice', roles: [], createdAt: 1 })
  const { user: bob } = await store.accounts.createUser({ username: 'bob', roles: [], createdAt: 1 })
  await store.transfers.award({ kind: 'award', postings: [{ userId: alice.id, amount: 10_000, category: 'awarded' }] })
  await store.transfers.transfer({ senderId: alice.id, recipientId: bob.id, amount: 2500, memo: null, idempotencyKey: 'k', fingerprint: 'f', createdAt: 2,
    entry: { kind: 'transfer', ref: `${alice.id}:k`, postings: [
      { userId: alice.id, amount: -2500, category: 'sent', counterpartyId: bob.id },
      { userId: bob.id, amount: 2500, category: 'received', counterpartyId: alice.id },
    ] } })

  const sound = runCli(['--database-url', url])
  t.equal(sound.code, 0, sound.stderr)
  t.match(sound.stdout, /minted\s+10\.000 kudos\n/)
  t.match(sound.stdout, /^OK:/m)
  const fromEnv = runCli(['--json'], { DATABASE_URL: url })
  t.equal(fromEnv.code, 0, fromEnv.stderr)
  t.match(JSON.parse(fromEnv.stdout), { ok: true, users: 3, entries: 2, postings: 3, minted: 10_000, sumBalances: 10_000, problems: [] })
  t.notMatch(fromEnv.stdout, /password/)

  await store.pool.query('update balances set balance = balance + 1000 where user_id = $1', [bob.id])
  const broken = runCli(['--database-url', url])
  t.equal(broken.code, 1, broken.stderr)
  t.match(broken.stdout, /^FAILED: 2 problem\(s\):$/m)
  t.match(broken.stdout, /^ {2}- user \d+ \(bob\): balance is 3\.500 kudos, but its postings sum to 2\.500 \(off by 1\.000\)$/m)
  t.match(broken.stdout, /^ {2}- mint invariant broken/m)
  t.same((await store.audit.run()).problems.length, 2, 'the store\'s own audit agrees')
})

t.test('usage errors and unreadable databases exit 2', async (t) => {
  const empty = await createTestDatabase(t, 'empty')
  const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['a database without the ledger', ['--database-url', empty], {}, /cannot audit .*not a horde-broker database/],
    ['nothing listening', ['--database-url', 'postgres://postgres@127.0.0.1:1/none'], {}, /cannot audit postgres:\/\/postgres@127\.0\.0\.1:1\/none/],
    ['not a postgres URL', ['--database-url', 'mysql://x/y'], {}, /expects a postgres:\/\/ URL/],
    ['two databases', ['--database-url', empty, '--db', 'x.sqlite'], {}, /pass one/],
    ['a bad DATABASE_URL', [], { DATABASE_URL: 'redis://x' }, /Invalid DATABASE_URL/],
  ]
  for (const [name, args, env, message] of cases) {
    const run = runCli(args, env)
    t.equal(run.code, 2, name)
    t.match(run.stderr, message, name)
    t.equal(run.stdout, '', `${name}: nothing on stdout`)
  }
})
