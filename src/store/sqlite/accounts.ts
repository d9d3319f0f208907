/**
 * Users and API keys on SQLite. A user is created with its balance row (and, from REST
 * registration, its first key) in one transaction, so the ledger can always post to a user
 * who exists. Names are unique without case (`username_key`).
 */
import type Database from 'better-sqlite3'
import { BrokerError } from '../../errors.js'
import type { AccountStore, ApiKeyRecord, KeyLookup, NewKey, NewUser, UserRecord } from '../ports.js'
import type { Committer } from './commit.js'

interface UserRow extends Omit<UserRecord, 'roles'> { roles: string }
interface KeyRow extends Omit<ApiKeyRecord, 'scopes'> { scopes: string }

const USER_COLUMNS = 'id, username, created_at as createdAt, roles, suspended_at as suspendedAt'
const KEY_COLUMNS = `id, user_id as userId, lookup, secret_hash as secretHash, name, scopes, created_at as createdAt,
  revoked_at as revokedAt`

/** A `users` row (roles as JSON text) as a record. */
export const toUser = (row: UserRow): UserRecord => ({ ...row, roles: JSON.parse(row.roles) as string[] })
const toKey = (row: KeyRow): ApiKeyRecord => ({ ...row, scopes: JSON.parse(row.scopes) as string[] })

/** The statements that create a user; shared with the identity store, whose first login creates one. */
export interface UserWriter {
  /** Inside a transaction: the user and its balance row; throws `username_taken`. */
  create(user: NewUser): UserRecord
  /** Inside a transaction: a key row; returns its id. */
  insertKey(key: NewKey): number
}

/** Prepares the user-creating statements once. */
export function createUserWriter(sqlite: Database.Database): UserWriter {
  const taken = sqlite.prepare<[string], { id: number }>('select id from users where username_key = ?')
  const insertUser = sqlite.prepare<[string, string, number, string], UserRow>(
    `insert into users (username, username_key, created_at, roles) values (?, ?, ?, ?) returning ${USER_COLUMNS}`)
  const insertBalance = sqlite.prepare('insert into balances (user_id) values (?)')
  const insertKey = sqlite.prepare<[number, string, string, string, string, number], { id: number }>(
    'insert into api_keys (user_id, lookup, secret_hash, name, scopes, created_at) values (?, ?, ?, ?, ?, ?) returning id')
  return {
    create(user) {
      const key = user.username.toLowerCase()
      if (taken.get(key)) throw new BrokerError('username_taken')
      const row = insertUser.get(user.username, key, user.createdAt, JSON.stringify(user.roles))!
      insertBalance.run(row.id)
      return toUser(row)
    },
    insertKey(k) {
      return insertKey.get(k.userId, k.lookup, k.secretHash, k.name, JSON.stringify(k.scopes), k.createdAt)!.id
    },
  }
}

/** The `AccountStore` on SQLite: writes through `commit`, reads prepared once. */
export function createSqliteAccountStore(sqlite: Database.Database, commit: Committer, users: UserWriter): AccountStore {
  const byId = sqlite.prepare<[number], UserRow>(`select ${USER_COLUMNS} from users where id = ?`)
  const byName = sqlite.prepare<[string], UserRow>(`select ${USER_COLUMNS} from users where username_key = ?`)
  const setRoles = sqlite.prepare('update users set roles = ? where id = ?')
  const keyByLookup = sqlite.prepare<[string], Omit<KeyLookup, 'scopes' | 'roles'> & { scopes: string; roles: string }>(`
    select k.id as id, k.user_id as userId, k.secret_hash as secretHash, k.scopes as scopes, k.revoked_at as revokedAt,
      u.username as username, u.roles as roles, u.suspended_at as suspendedAt
    from api_keys k join users u on u.id = k.user_id where k.lookup = ?`)
  const revoke = sqlite.prepare('update api_keys set revoked_at = ? where id = ? and user_id = ? and revoked_at is null')
  const listKeys = sqlite.prepare<[number], KeyRow>(`select ${KEY_COLUMNS} from api_keys where user_id = ? order by id desc`)
  const keyState = sqlite.prepare<[number], { revokedAt: number | null }>('select revoked_at as revokedAt from api_keys where id = ?')
  const countUsers = sqlite.prepare<[], { n: number }>('select count(*) as n from users')
  const byBalance = sqlite.prepare<[number, number], UserRow & { balance: number }>(`
    select u.id as id, u.username as username, u.created_at as createdAt, u.roles as roles, u.suspended_at as suspendedAt, b.balance as balance
    from users u join balances b on b.user_id = u.id order by b.balance desc, u.id limit ? offset ?`)

  return {
    createUser(user, firstKey) {
      return commit.run(() => {
        const created = users.create(user)
        const keyId = firstKey ? users.insertKey({ ...firstKey, userId: created.id }) : null
        return { user: created, keyId }
      })
    },
    async byId(id) {
      const row = byId.get(id)
      return row && toUser(row)
    },
    async byName(username) {
      const row = byName.get(username.toLowerCase())
      return row && toUser(row)
    },
    async byIds(ids) {
      if (ids.length === 0) return []
      const found: UserRecord[] = []
      // Chunked: SQLite limits the number of parameters of one statement.
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500)
        found.push(...sqlite.prepare<number[], UserRow>(`select ${USER_COLUMNS} from users where id in (${chunk.map(() => '?').join(', ')})`).all(...chunk).map(toUser))
      }
      return found
    },
    async setRoles(userId, roles) {
      await commit.run(() => { setRoles.run(JSON.stringify(roles), userId) })
    },
    insertKey(key) {
      return commit.run(() => ({ id: users.insertKey(key) }))
    },
    async keyByLookup(lookup) {
      const row = keyByLookup.get(lookup)
      return row && { ...row, scopes: JSON.parse(row.scopes) as string[], roles: JSON.parse(row.roles) as string[] }
    },
    revokeKey(userId, keyId, at) {
      return commit.run(() => revoke.run(at, keyId, userId).changes > 0)
    },
    async listKeys(userId) {
      return listKeys.all(userId).map(toKey)
    },
    async isKeyActive(keyId) {
      const row = keyState.get(keyId)
      return !!row && row.revokedAt === null
    },
    async countUsers() {
      return countUsers.get()!.n
    },
    async byBalance(limit, offset) {
      return byBalance.all(limit, offset).map((row) => ({ ...toUser(row), balance: row.balance }))
    },
  }
}
