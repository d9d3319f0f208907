/**
 * The storage ports of people and their money's paper trail: users and API keys, OAuth
 * identities, transfers and awards, the audit. Same rules as src/store/ports.ts (which
 * gathers them into `Store`): named async operations, each atomic, plain records out.
 */
import type { EntryInput, EntryKind } from '../economy/posting-rules.js'

/** A balance row: the balance and each category's running total (absolute amounts), milli-kudos. */
export interface AccountRecord {
  userId: number
  balance: number
  earnedGeneration: number
  earnedUptime: number
  spent: number
  sent: number
  received: number
  awarded: number
  /** Credits of rewards a payer's debt could not fund (the system account's only category). */
  unfunded: number
}

// --- users and API keys -----------------------------------------------------------------------

/** A user as stored (the public fields; never a key). */
export interface UserRecord {
  id: number
  username: string
  createdAt: number
  /** Roles such as `trusted`, `moderator`, `admin`. */
  roles: string[]
  /** Set while the user is suspended by a moderator. */
  suspendedAt: number | null
}

/** An API key as stored: the secret part only as its hash. */
export interface ApiKeyRecord {
  id: number
  userId: number
  /** Public part of the key, used to find it. */
  lookup: string
  /** SHA-256 of the secret part, hex. */
  secretHash: string
  name: string
  /** `['all']` or a list of scopes. */
  scopes: string[]
  createdAt: number
  revokedAt: number | null
}

/** What authentication needs about a presented key: the key row and its user, in one read. */
export interface KeyLookup extends Pick<ApiKeyRecord, 'id' | 'userId' | 'secretHash' | 'scopes' | 'revokedAt'> {
  username: string
  roles: string[]
  suspendedAt: number | null
}

export type NewKey = Omit<ApiKeyRecord, 'id' | 'revokedAt'>

export interface NewUser {
  /** Already validated by the accounts module. */
  username: string
  roles: string[]
  createdAt: number
}

export interface AccountStore {
  /**
   * Creates the user and its balance row (and, when given, its first key) in one transaction.
   * Throws `username_taken` when the name, compared without case, exists.
   */
  createUser(user: NewUser, firstKey?: Omit<NewKey, 'userId'>): Promise<{ user: UserRecord; keyId: number | null }>
  byId(id: number): Promise<UserRecord | undefined>
  /** By name, compared without case. */
  byName(username: string): Promise<UserRecord | undefined>
  /** The users of these ids that exist, in no particular order. */
  byIds(ids: readonly number[]): Promise<UserRecord[]>
  setRoles(userId: number, roles: string[]): Promise<void>
  insertKey(key: NewKey): Promise<{ id: number }>
  keyByLookup(lookup: string): Promise<KeyLookup | undefined>
  /** Revokes an active key of `userId`; false when there is none (unknown, someone else's, revoked). */
  revokeKey(userId: number, keyId: number, at: number): Promise<boolean>
  /** The user's keys, newest first. */
  listKeys(userId: number): Promise<ApiKeyRecord[]>
  isKeyActive(keyId: number): Promise<boolean>
  /** Users in the table, the Anonymous account included. */
  countUsers(): Promise<number>
  /** Users with their balances, highest balance first (then by id): the public user list. */
  byBalance(limit: number, offset: number): Promise<Array<UserRecord & { balance: number }>>
}

// --- browser sessions -------------------------------------------------------------------------

export interface SessionRow {
  /** SHA-256 of the cookie's nonce, hex: the cookie itself is never stored. */
  id: string
  userId: number
  createdAt: number
  expiresAt: number
}

/** The sessions the server honours; a cookie without its row is not a session. */
export interface SessionStore {
  /** Records a new session (and forgets sessions that expired before `row.createdAt`). */
  start(row: SessionRow): Promise<void>
  /** Whether session `id` of `userId` exists and has not expired at `now`. */
  isActive(id: string, userId: number, now: number): Promise<boolean>
  /** Ends one session; false when it was not there. */
  end(id: string): Promise<boolean>
  /** Ends every session of the user; returns how many. */
  endAll(userId: number): Promise<number>
}

// --- OAuth identities -------------------------------------------------------------------------

export interface IdentityRecord {
  id: number
  /** `discord` | `github` | `google` */
  provider: string
  /** The provider's stable id for the person. */
  subject: string
  userId: number
  /** The provider's name for the person at the last login. */
  displayName: string | null
  createdAt: number
  lastLoginAt: number | null
}

export interface IdentityProfile {
  provider: string
  subject: string
  /** Empty: keep the name shown so far. */
  name: string
}

export interface IdentityStore {
  /**
   * In one transaction: finds the identity and records the login, or creates a user named by
   * the first free name of `candidates` (with its balance row) and links the identity to it.
   * Two first logins of the same person racing cannot both create a user.
   */
  loginOrCreate(profile: IdentityProfile, candidates: Iterable<string>, at: number): Promise<{ user: UserRecord; created: boolean }>
  /** Links the identity to `userId` (or records the login when it is linked already); throws `identity_taken` when it belongs to someone else. */
  link(userId: number, profile: IdentityProfile, at: number): Promise<IdentityRecord>
  /** The user's identities, oldest first. */
  forUser(userId: number): Promise<IdentityRecord[]>
}

// --- transfers and awards ---------------------------------------------------------------------

export interface TransferRecord {
  id: number
  senderId: number
  recipientId: number
  /** Milli-kudos. */
  amount: number
  memo: string | null
  idempotencyKey: string
  /** Fingerprint of the content, to tell a replay from a conflicting reuse of the key. */
  fingerprint: string
  entryId: number
  createdAt: number
}

export interface NewTransfer extends Omit<TransferRecord, 'id' | 'entryId'> {
  /** The transfer entry (built by the transfers module from the posting rules). */
  entry: EntryInput
}

export interface TransferStore {
  /**
   * In one transaction: when the sender already used the key, the earlier transfer (replayed;
   * `idempotency_conflict` when its fingerprint differs); otherwise checks that the amount
   * does not exceed the sender's positive balance (`insufficient_kudos`), appends the entry
   * and records the transfer.
   */
  transfer(transfer: NewTransfer): Promise<{ transfer: TransferRecord; replayed: boolean }>
  /** Appends an award entry (kudos minted by a moderator). */
  award(entry: EntryInput): Promise<{ entryId: number }>
  byId(id: number): Promise<TransferRecord | undefined>
  byKey(senderId: number, idempotencyKey: string): Promise<TransferRecord | undefined>
  /** The newest transfer, if any. */
  latest(): Promise<TransferRecord | undefined>
}

// --- the audit ----------------------------------------------------------------------------

/** Thrown when the file is not a horde-broker database (a table the audit reads is missing). */
export class NotALedgerError extends Error {
  override name = 'NotALedgerError'
}

/** Tables the audit reads. */
export const AUDITED_TABLES = ['users', 'balances', 'ledger_entries', 'postings', 'transfers', 'requests'] as const


/** What the audit found (src/ledger/audit.ts says what it checks). */
export interface AuditReport {
  /** True when no problem was found. */
  ok: boolean
  /** Rows in `users`, the Anonymous account included. */
  users: number
  /** Rows in `ledger_entries`. */
  entries: number
  /** Rows in `postings`. */
  postings: number
  /** Sum of `ledger_entries.minted`, in milli-kudos: all kudos ever created. */
  minted: number
  /** Sum of `balances.balance`, in milli-kudos; equal to `minted` in a sound ledger. */
  sumBalances: number
  /** One line per problem, naming the row (user, entry, request, transfer), what was expected and what was found. */
  problems: string[]
}


/** Row counts, for the audit's summary and for tests that prove nothing was written. */
export interface TableCounts {
  users: number
  entries: number
  postings: number
  transfers: number
  requests: number
}

export interface AuditStore {
  /** Recomputes the ledger from its postings in one read snapshot; writes nothing. Throws `NotALedgerError` on a foreign file. */
  run(): Promise<AuditReport>
  counts(): Promise<TableCounts>
  /** Every balance row, by user id: to prove a refused operation changed nothing. */
  balances(): Promise<AccountRecord[]>
  /** Entries of `kind` (with this ref, when given). */
  countEntries(kind: EntryKind, ref?: string): Promise<number>
  /** Kudos minted by entries of `kind`, milli-kudos. */
  mintedBy(kind: EntryKind): Promise<number>
  /** Transfers recorded (only those with this idempotency key, any sender, when given). */
  countTransfers(idempotencyKey?: string): Promise<number>
  /** Generation entries per request id (settled more than once shows as n > 1). */
  settlementsByRequest(): Promise<Map<string, number>>
}
