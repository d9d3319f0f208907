/**
 * Users and API keys on PostgreSQL. A user is created with its balance row (and its first
 * key) in one write; the name is claimed by `INSERT … ON CONFLICT (username_key) DO NOTHING`,
 * so two processes registering one name race on the unique index, not on a read.
 */
import type pg from 'pg'
import { BrokerError } from '../../errors.js'
import type { AccountStore, ApiKeyRecord, KeyLookup, NewKey, NewUser, UserRecord } from '../ports.js'
import type { PgCommitter } from './commit.js'
import { PG_ACCOUNT_COLUMNS } from './ledger.js'

interface UserRow extends Omit<UserRecord, 'roles'> { roles: string }
interface KeyRow extends Omit<ApiKeyRecord, 'scopes'> { scopes: string }

export const USER_COLUMNS = 'id, username, created_at as "createdAt", roles, suspended_at as "suspendedAt"'
const KEY_COLUMNS = `id, user_id as "userId", lookup, secret_hash as "secretHash", name, scopes, created_at as "createdAt",
  revoked_at as "revokedAt"`

/** A `users` row (roles as JSON text) as a record. */
export const toUser = (row: UserRow): UserRecord => ({ ...row, roles: JSON.parse(row.roles) as string[] })
const toKey = (row: KeyRow): ApiKeyRecord => ({ ...row, scopes: JSON.parse(row.scopes) as string[] })

/** Inside a write: the user and its balance row; throws `username_taken`. Shared with the identity store. */
export async function createUserRow(db: pg.ClientBase, user: NewUser): Promise<UserRecord> {
  const row = (await db.query<UserRow>(`insert into users (username, username_key, created_at, roles) values ($1, $2, $3, $4)
    on conflict (username_key) do nothing returning ${USER_COLUMNS}`, [user.username, user.username.toLowerCase(), user.createdAt, JSON.stringify(user.roles)])).rows[0]
  if (!row) throw new BrokerError('username_taken')
  await db.query('insert into balances (user_id) values ($1)', [row.id])
  return toUser(row)
}

async function insertKeyRow(db: pg.ClientBase, k: NewKey): Promise<number> {
  return (await db.query<{ id: number }>('insert into api_keys (user_id, lookup, secret_hash, name, scopes, created_at) values ($1, $2, $3, $4, $5, $6) returning id',
    [k.userId, k.lookup, k.secretHash, k.name, JSON.stringify(k.scopes), k.createdAt])).rows[0].id
}

/** The `AccountStore` on PostgreSQL: writes through `commit`, reads on the pool. */
export function createPgAccountStore(pool: pg.Pool, commit: PgCommitter): AccountStore {
  const all = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) => (await pool.query<T>(text, values)).rows
  return {
    createUser(user, firstKey) {
      return commit.run(async ({ db }) => {
        const created = await createUserRow(db, user)
        const keyId = firstKey ? await insertKeyRow(db, { ...firstKey, userId: created.id }) : null
        return { user: created, keyId }
      })
    },
    async byId(id) {
      const row = (await all<UserRow>(`select ${USER_COLUMNS} from users where id = $1`, [id]))[0]
      return row && toUser(row)
    },
    async byName(username) {
      const row = (await all<UserRow>(`select ${USER_COLUMNS} from users where username_key = $1`, [username.toLowerCase()]))[0]
      return row && toUser(row)
    },
    async byIds(ids) {
      if (ids.length === 0) return []
      return (await all<UserRow>(`select ${USER_COLUMNS} from users where id = any($1::int[])`, [ids])).map(toUser)
    },
    async setRoles(userId, roles) {
      await commit.run(async ({ db }) => { await db.query('update users set roles = $1 where id = $2', [JSON.stringify(roles), userId]) })
    },
    insertKey(key) {
      return commit.run(async ({ db }) => ({ id: await insertKeyRow(db, key) }))
    },
    async keyByLookup(lookup) {
      const row = (await all<Omit<KeyLookup, 'scopes' | 'roles'> & { scopes: string; roles: string }>(`
        select k.id as id, k.user_id as "userId", k.secret_hash as "secretHash", k.scopes as scopes, k.revoked_at as "revokedAt",
          u.username as username, u.roles as roles, u.suspended_at as "suspendedAt"
        from api_keys k join users u on u.id = k.user_id where k.lookup = $1`, [lookup]))[0]
      return row && { ...row, scopes: JSON.parse(row.scopes) as string[], roles: JSON.parse(row.roles) as string[] }
    },
    revokeKey(userId, keyId, at) {
      return commit.run(async ({ db }) => (await db.query('update api_keys set revoked_at = $1 where id = $2 and user_id = $3 and revoked_at is null',
        [at, keyId, userId])).rowCount! > 0)
    },
    async listKeys(userId) {
      return (await all<KeyRow>(`select ${KEY_COLUMNS} from api_keys where user_id = $1 order by id desc`, [userId])).map(toKey)
    },
    async isKeyActive(keyId) {
      const row = (await all<{ revokedAt: number | null }>('select revoked_at as "revokedAt" from api_keys where id = $1', [keyId]))[0]
      return !!row && row.revokedAt === null
    },
    async countUsers() {
      return (await all<{ n: number }>('select count(*) as n from users'))[0].n
    },
    async byBalance(limit, offset) {
      const rows = await all<UserRow & { balance: number }>(`
        select u.id as id, u.username as username, u.created_at as "createdAt", u.roles as roles, u.suspended_at as "suspendedAt", b.balance as balance
        from users u join balances b on b.user_id = u.id order by b.balance desc, u.id limit $1 offset $2`, [limit, offset])
      return rows.map((row) => ({ ...toUser(row), balance: row.balance }))
    },
  }
}

export { PG_ACCOUNT_COLUMNS }
