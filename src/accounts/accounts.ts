/**
 * Users and API keys. A key is `hb_<lookup>_<secret>`: the lookup part finds the row, the
 * 192-bit secret is stored only as a SHA-256 hash and compared in constant time. The
 * Anonymous account's well-known key is `0000000000`; no key at all is anonymous too.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { ANONYMOUS_ID, ANONYMOUS_NAME } from '../economy/anonymous.js'
import { BrokerError } from '../errors.js'
import { isReservedName } from '../core/worker-names.js'
import type { NewKey, Store, UserRecord } from '../store/ports.js'

export const ANONYMOUS_KEY = '0000000000'

/** A user as the accounts module hands it out: the store's record. */
export type User = UserRecord

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
  /** A moderator suspended the account (read at authentication: a later suspension reaches live sockets through the core). */
  suspended: boolean
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
  suspended: false,
})

const ANONYMOUS_KEY_BUFFER = Buffer.from(ANONYMOUS_KEY)

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}

export interface AccountEvents {
  /**
   * An API key was revoked (emitted after the write). Sessions opened with it listen and
   * close. With CLUSTER=on src/cluster/account-bridge.ts relays it to the other processes.
   */
  revoked: [keyId: number]
}

export interface Accounts {
  /** Creates a user with a first API key (scope `all`); the key is returned once. */
  register(username: string, options?: { roles?: string[] }): Promise<{ user: User; key: IssuedKey }>
  /** Creates a user without a key (OAuth login, tests); throws `username_taken`. */
  createUser(username: string, options?: { roles?: string[] }): Promise<User>
  issueKey(userId: number, name: string, scopes: readonly string[]): Promise<IssuedKey>
  revokeKey(userId: number, keyId: number): Promise<boolean>
  listKeys(userId: number): Promise<KeyView[]>
  /** Resolves a presented key (or none) to a principal; throws `unauthorized`/`key_revoked`. */
  authenticate(presented: string | undefined): Promise<Principal>
  /** Whether the key exists and is not revoked; for code that re-checks live sessions. */
  isKeyActive(keyId: number): Promise<boolean>
  byId(id: number): Promise<User | undefined>
  byName(username: string): Promise<User | undefined>
  /** The users of these ids that exist (to name counterparties). */
  byIds(ids: readonly number[]): Promise<User[]>
  setRoles(userId: number, roles: string[]): Promise<void>
  readonly events: EventEmitter<AccountEvents>
}

/**
 * Checks a new username against the house rule; throws `validation_failed`, or
 * `reserved_username` for the words worker names reserve too (admin, root, …, any case).
 * Accounts that already hold such a name keep it: only new names are checked.
 */
export function checkUsername(username: string): void {
  if (!USERNAME.test(username) || /^\d+$/.test(username)) {
    throw new BrokerError('validation_failed', 'Username must be 2-32 characters: letters, digits, and _ . - (not first)')
  }
  if (isReservedName(username)) throw new BrokerError('reserved_username', `The username "${username}" is reserved`)
}

/** A new key: its public lookup part, its secret (shown once) and the row that keeps only the secret's hash. */
function newKey(name: string, scopes: readonly string[]): { key: string; row: Omit<NewKey, 'userId'> } {
  if (typeof name !== 'string' || name.length < 1 || name.length > 64) throw new BrokerError('validation_failed', 'Key name must be 1-64 characters')
  const normalized = normalizeScopes(scopes)
  const lookup = randomBytes(9).toString('base64url')
  const secret = randomBytes(24).toString('base64url')
  return {
    key: `hb_${lookup}_${secret}`,
    row: { lookup, secretHash: hashSecret(secret).toString('hex'), name, scopes: normalized, createdAt: Date.now() },
  }
}

export function createAccounts(store: Pick<Store, 'accounts'>): Accounts {
  const events = new EventEmitter<AccountEvents>()
  events.setMaxListeners(0)
  const users = store.accounts

  return {
    async register(username, options = {}) {
      checkUsername(username)
      const { key, row } = newKey('default', ['all'])
      const { user, keyId } = await users.createUser({ username, roles: options.roles ?? [], createdAt: Date.now() }, row)
      return { user, key: { id: keyId!, key, name: row.name, scopes: row.scopes, createdAt: row.createdAt } }
    },

    async createUser(username, options = {}) {
      checkUsername(username)
      return (await users.createUser({ username, roles: options.roles ?? [], createdAt: Date.now() })).user
    },

    async issueKey(userId, name, scopes) {
      if (userId === ANONYMOUS_ID) throw new BrokerError('login_required')
      const { key, row } = newKey(name, scopes)
      const { id } = await users.insertKey({ ...row, userId })
      return { id, key, name: row.name, scopes: row.scopes, createdAt: row.createdAt }
    },

    async revokeKey(userId, keyId) {
      if (!(await users.revokeKey(userId, keyId, Date.now()))) return false
      // A listener's failure must not turn a done revocation into an error for the caller.
      try {
        events.emit('revoked', keyId)
      } catch { /* listeners guard themselves; this is the last line */ }
      return true
    },

    async listKeys(userId) {
      return (await users.listKeys(userId)).map((k) => ({ id: k.id, name: k.name, prefix: `hb_${k.lookup}_…`, scopes: k.scopes, createdAt: k.createdAt, revokedAt: k.revokedAt }))
    },

    async authenticate(presented) {
      if (presented === undefined || presented === '') return ANONYMOUS
      const candidate = Buffer.from(presented)
      if (candidate.length === ANONYMOUS_KEY_BUFFER.length && timingSafeEqual(candidate, ANONYMOUS_KEY_BUFFER)) return ANONYMOUS
      const match = /^hb_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{32})$/.exec(presented)
      if (!match) throw new BrokerError('unauthorized')
      const row = await users.keyByLookup(match[1])
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
        suspended: row.suspendedAt !== null,
      }
    },

    isKeyActive: (keyId) => users.isKeyActive(keyId),
    byId: (id) => users.byId(id),
    byName: (username) => users.byName(username),
    byIds: (ids) => users.byIds(ids),
    setRoles: (userId, roles) => users.setRoles(userId, roles),
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
