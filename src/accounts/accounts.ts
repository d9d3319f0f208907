/**
 * Users and API keys. A key is `hb_<lookup>_<secret>`: the lookup part finds the row, the
 * 192-bit secret is stored only as a SHA-256 hash and compared in constant time. The
 * Anonymous account's well-known key is `0000000000`; no key at all is anonymous too.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { and, desc, eq, isNull, sql } from 'drizzle-orm'
import { ANONYMOUS_ID, ANONYMOUS_NAME, type Db } from '../db/open.js'
import { apiKeys, balances, users, type User } from '../db/schema.js'
import { BrokerError } from '../errors.js'

export const ANONYMOUS_KEY = '0000000000'

/** What a key may do. `all` is every scope; bots get narrower keys. */
export const SCOPES = ['read', 'transfer', 'generate', 'work'] as const
export type Scope = (typeof SCOPES)[number]

export interface Principal {
  userId: number
  username: string
  roles: string[]
  /** Scopes of the key used; the Anonymous account may generate and read. */
  scopes: ReadonlySet<Scope>
  /** Id of the API key used, null for the Anonymous account. */
  keyId: number | null
  anonymous: boolean
}

export interface IssuedKey {
  id: number
  key: string
  name: string
  /** `['all']` or a list of scopes. */
  scopes: string[]
  createdAt: number
}

export interface KeyView {
  id: number
  name: string
  prefix: string
  scopes: string[]
  createdAt: number
  revokedAt: number | null
}

export const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$/

const ANONYMOUS: Principal = Object.freeze({
  userId: ANONYMOUS_ID,
  username: ANONYMOUS_NAME,
  roles: [],
  scopes: new Set<Scope>(['read', 'generate']),
  keyId: null,
  anonymous: true,
})

const ANONYMOUS_KEY_BUFFER = Buffer.from(ANONYMOUS_KEY)

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}

export interface AccountEvents {
  /**
   * An API key was revoked (emitted after the write). Sessions opened with it listen and
   * close. In-process only: several broker processes would relay it over Redis pub/sub.
   */
  revoked: [keyId: number]
}

export interface Accounts {
  /** Creates a user with a first API key (scope `all`); the key is returned once. */
  register(username: string, options?: { roles?: string[] }): { user: User; key: IssuedKey }
  /** Creates a user without a key (OAuth login) or returns null if the name is taken. */
  createUser(username: string, options?: { roles?: string[] }): User
  issueKey(userId: number, name: string, scopes: readonly string[]): IssuedKey
  revokeKey(userId: number, keyId: number): boolean
  listKeys(userId: number): KeyView[]
  /** Resolves a presented key (or none) to a principal; throws `unauthorized`/`key_revoked`. */
  authenticate(presented: string | undefined): Principal
  /** Like authenticate, but null instead of throwing; for code that re-checks live sessions. */
  isKeyActive(keyId: number): boolean
  byId(id: number): User | undefined
  byName(username: string): User | undefined
  setRoles(userId: number, roles: string[]): void
  readonly events: EventEmitter<AccountEvents>
}

export function createAccounts(db: Db): Accounts {
  const events = new EventEmitter<AccountEvents>()
  events.setMaxListeners(0)
  const selectKey = db.select({
    id: apiKeys.id, userId: apiKeys.userId, secretHash: apiKeys.secretHash, scopes: apiKeys.scopes, revokedAt: apiKeys.revokedAt,
    username: users.username, roles: users.roles,
  }).from(apiKeys).innerJoin(users, eq(users.id, apiKeys.userId)).where(eq(apiKeys.lookup, sql.placeholder('lookup'))).prepare()

  function createUserIn(tx: Db | Parameters<Parameters<Db['transaction']>[0]>[0], username: string, roles: string[]): User {
    if (!USERNAME.test(username) || /^\d+$/.test(username)) {
      throw new BrokerError('validation_failed', 'Username must be 2-32 characters: letters, digits, and _ . - (not first)')
    }
    const existing = tx.select({ id: users.id }).from(users).where(eq(users.usernameKey, username.toLowerCase())).get()
    if (existing) throw new BrokerError('username_taken')
    const user = tx.insert(users).values({ username, usernameKey: username.toLowerCase(), createdAt: Date.now(), roles }).returning().get()
    tx.insert(balances).values({ userId: user.id }).run()
    return user
  }

  function issueKeyIn(tx: Db | Parameters<Parameters<Db['transaction']>[0]>[0], userId: number, name: string, scopes: readonly string[]): IssuedKey {
    if (typeof name !== 'string' || name.length < 1 || name.length > 64) throw new BrokerError('validation_failed', 'Key name must be 1-64 characters')
    const normalized = normalizeScopes(scopes)
    const lookup = randomBytes(9).toString('base64url')
    const secret = randomBytes(24).toString('base64url')
    const createdAt = Date.now()
    const row = tx.insert(apiKeys).values({
      userId, lookup, secretHash: hashSecret(secret).toString('hex'), name, scopes: normalized, createdAt,
    }).returning({ id: apiKeys.id }).get()
    return { id: row.id, key: `hb_${lookup}_${secret}`, name, scopes: normalized, createdAt }
  }

  return {
    register(username, options = {}) {
      return db.transaction((tx) => {
        const user = createUserIn(tx, username, options.roles ?? [])
        const key = issueKeyIn(tx, user.id, 'default', ['all'])
        return { user, key }
      }, { behavior: 'immediate' })
    },

    createUser(username, options = {}) {
      return db.transaction((tx) => createUserIn(tx, username, options.roles ?? []), { behavior: 'immediate' })
    },

    issueKey(userId, name, scopes) {
      if (userId === ANONYMOUS_ID) throw new BrokerError('login_required')
      return issueKeyIn(db, userId, name, scopes)
    },

    revokeKey(userId, keyId) {
      const result = db.update(apiKeys).set({ revokedAt: Date.now() })
        .where(and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt))).run()
      if (result.changes === 0) return false
      // A listener's failure must not turn a done revocation into an error for the caller.
      try {
        events.emit('revoked', keyId)
      } catch { /* listeners guard themselves; this is the last line */ }
      return true
    },

    listKeys(userId) {
      return db.select({ id: apiKeys.id, name: apiKeys.name, lookup: apiKeys.lookup, scopes: apiKeys.scopes, createdAt: apiKeys.createdAt, revokedAt: apiKeys.revokedAt })
        .from(apiKeys).where(eq(apiKeys.userId, userId)).orderBy(desc(apiKeys.id)).all()
        .map(({ lookup, ...rest }) => ({ ...rest, prefix: `hb_${lookup}_…` }))
    },

    authenticate(presented) {
      if (presented === undefined || presented === '') return ANONYMOUS
      const candidate = Buffer.from(presented)
      if (candidate.length === ANONYMOUS_KEY_BUFFER.length && timingSafeEqual(candidate, ANONYMOUS_KEY_BUFFER)) return ANONYMOUS
      const match = /^hb_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{32})$/.exec(presented)
      if (!match) throw new BrokerError('unauthorized')
      const row = selectKey.get({ lookup: match[1] })
      // Hash the secret even when the lookup missed, so both paths cost the same.
      const presentedHash = hashSecret(match[2])
      const storedHash = row ? Buffer.from(row.secretHash, 'hex') : Buffer.alloc(32)
      if (!timingSafeEqual(presentedHash, storedHash) || !row) throw new BrokerError('unauthorized')
      if (row.revokedAt !== null) throw new BrokerError('key_revoked')
      return {
        userId: row.userId,
        username: row.username,
        roles: row.roles,
        scopes: new Set(row.scopes.includes('all') ? SCOPES : (row.scopes as Scope[])),
        keyId: row.id,
        anonymous: false,
      }
    },

    isKeyActive(keyId) {
      const row = db.select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.id, keyId)).get()
      return !!row && row.revokedAt === null
    },

    byId(id) {
      return db.select().from(users).where(eq(users.id, id)).get()
    },

    byName(username) {
      return db.select().from(users).where(eq(users.usernameKey, username.toLowerCase())).get()
    },

    setRoles(userId, roles) {
      db.update(users).set({ roles }).where(eq(users.id, userId)).run()
    },

    events,
  }
}

function normalizeScopes(scopes: readonly string[]): string[] {
  if (!Array.isArray(scopes) || scopes.length === 0) throw new BrokerError('validation_failed', 'A key needs at least one scope')
  if (scopes.includes('all')) return ['all']
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) throw new BrokerError('validation_failed', `Unknown scope ${JSON.stringify(scope)}; use all or ${SCOPES.join(', ')}`)
  }
  return [...new Set(scopes)] as Scope[]
}
