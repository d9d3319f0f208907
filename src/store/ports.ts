/**
 * The storage port: every read and write the broker makes, as small named async operations,
 * each atomic inside its adapter. No caller ever holds a transaction, so a second database
 * (PostgreSQL) is a second folder beside `sqlite/`, not a rewrite of the callers.
 *
 * Amounts are integer milli-kudos. Times are epoch milliseconds. Operations that write
 * postings emit their balance changes on `Store.events` once the write has committed.
 */
import type { EventEmitter } from 'node:events'
import type { BalanceChange, EntryInput, EntryKind, Category } from '../economy/posting-rules.js'
import type { CreditLines, Split } from '../economy/payment.js'

export type { BalanceChange, EntryInput, EntryKind, Category }
export * from './people-ports.js'
export * from './moderation-ports.js'
import type { AccountRecord, AccountStore, AuditStore, IdentityStore, SessionStore, TransferStore } from './people-ports.js'
import type { ModerationStore } from './moderation-ports.js'

// --- requests -------------------------------------------------------------------------------

/** A request's limits and sampler settings, as submitted. */
export interface RequestParams {
  models: string[]
  max_length: number
  max_context_length: number
  params: Record<string, unknown>
  /** Only workers a moderator marked trusted may serve it (absent: any worker). */
  trusted_workers?: boolean
}

/** `waiting` covers running too: running lives in the queue, not in the database. */
export type StoredState = 'waiting' | 'done' | 'failed' | 'cancelled'

export interface RequestRecord {
  id: string
  userId: number
  state: StoredState
  prompt: string
  params: RequestParams
  clientIp: string | null
  createdAt: number
  finishedAt: number | null
  workerId: number | null
  workerName: string | null
  model: string | null
  text: string | null
  tokens: number | null
  /** Milli-kudos paid. */
  kudos: number | null
  error: string | null
  idempotencyKey: string | null
  /** SHA-256 (hex) of the capability its submitter holds; null when the id alone is the key. */
  capabilityHash: string | null
}

export interface NewRequest {
  id: string
  userId: number
  prompt: string
  params: RequestParams
  clientIp: string
  createdAt: number
  /** Already scoped (anonymous keys carry the address); null when the caller gave none. */
  idempotencyKey: string | null
  /** SHA-256 (hex) of the request's capability; null when the id alone is the key. */
  capabilityHash: string | null
}

export interface AcceptOptions {
  /** At most this many waiting requests for the user (for Anonymous: from `clientIp`). */
  cap: number
  /** Count the cap per address (the shared Anonymous account) instead of per user. */
  perAddress: boolean
}

export interface Accepted {
  id: string
  /** True when the idempotency key named an earlier request: nothing new was written. */
  replayed: boolean
  /** The requester's balance when the request was recorded (for its queue priority). */
  balance: number
}

export interface Settlement {
  request: string
  outcome: 'done' | 'cancelled'
  text: string
  /** Tokens billed (already within the plausibility bounds). */
  tokens: number
  /** Milli-kudos the work earned by the formula; who pays what of it is decided inside the write (economy/payment.ts). */
  reward: number
  worker: { id: number; name: string; ownerId: number }
  model: string
  finishedAt: number
  /** The requester is the worker's owner or one of its priority users: it pays at most what it holds above zero. */
  preferred: boolean
  /** The payers' credit lines (the store reads which kind the requester is, in the same transaction). */
  creditLines: CreditLines
  /** The speed bound cut this delivery: counts toward the worker's suspicion flag. */
  bounded: boolean
}

/** What a settlement wrote: the split of the reward, and whether it flagged the worker just now. */
export interface Settled extends Split {
  /** The worker was flagged for moderators by this settlement (it keeps hitting the plausibility bounds). */
  flagged: boolean
}

export interface RequestStore {
  /**
   * Records a new request, unless its idempotency key names an earlier one (replayed; a key
   * reused with other content throws `idempotency_conflict`). Checks the active-request cap
   * in the same transaction (throws `too_many_active`).
   */
  accept(request: NewRequest, options: AcceptOptions): Promise<Accepted>
  /**
   * Settles a finished or cancelled attempt exactly once: the request row, the worker's
   * counters (and its suspicion flag) and the payment entry in one transaction, the payment
   * split against the requester's balance as read in that transaction (economy/payment.ts).
   * The request's `kudos` is what the requester was charged. False when the request already
   * ended (nothing written).
   */
  settle(settlement: Settlement): Promise<Settled | false>
  /** Ends a request that is still waiting (cancelled, expired, failed). False when it was not waiting. */
  end(id: string, state: 'failed' | 'cancelled', fields?: { error?: string; finishedAt?: number }): Promise<boolean>
  byId(id: string): Promise<RequestRecord | undefined>
  /** Just the state and owner (dispatch reads it for every job: no prompt, no text). */
  state(id: string): Promise<Pick<RequestRecord, 'state' | 'userId'> | undefined>
  /** Waiting requests with an id after `after`, in id order (reconciliation pages through them). */
  waitingAfter(after: string, limit: number): Promise<RequestRecord[]>
  /** Waiting requests created before `cutoff` (expiry). */
  expiredBefore(cutoff: number, limit: number): Promise<Array<Pick<RequestRecord, 'id' | 'userId' | 'params'>>>
  /** Users with at least one waiting request (the ageing sweep). */
  usersWaiting(): Promise<number[]>
  /** Requests in the table (tests and status; cheap on both stores). */
  count(filter?: { userId?: number; state?: StoredState }): Promise<number>
  /** The most recently created request (in this state, when given). */
  latest(filter?: { state?: StoredState }): Promise<RequestRecord | undefined>
}

// --- workers --------------------------------------------------------------------------------

export interface WorkerRecord {
  id: number
  name: string
  ownerId: number
  createdAt: number
  lastSeenAt: number | null
  /** Milliseconds of observed online time credited so far. */
  uptimeMs: number
  jobs: number
  tokens: number
  /** Milli-kudos earned by generation and uptime. */
  earned: number
  /** Settled jobs the speed bound cut. */
  boundedJobs: number
  /** When the worker was flagged as one that keeps hitting the plausibility bounds; null: not flagged. */
  flaggedAt: number | null
  /** A moderator marked it trusted. */
  trusted: boolean
  /** Set while a moderator has paused it. */
  pausedAt: number | null
  pausedReason: string | null
}

export interface UptimeCredit {
  workerId: number
  ownerId: number
  /** Milliseconds paid for. */
  ms: number
  /** Milli-kudos minted. */
  milli: number
  /** Unique per batch and worker: a batch is never credited twice. */
  ref: string
}

export interface WorkerStore {
  /** Finds or creates the worker row of `name` for `ownerId`; throws `worker_name_taken` when another user owns it. */
  register(name: string, ownerId: number, at: number): Promise<WorkerRecord>
  /** Posts one uptime entry per credit and adds to each worker's counters, in one transaction. */
  creditUptime(credits: readonly UptimeCredit[], at: number): Promise<void>
  byName(name: string): Promise<WorkerRecord | undefined>
  byNames(names: readonly string[]): Promise<WorkerRecord[]>
  byOwner(ownerId: number): Promise<WorkerRecord[]>
}

// --- the ledger -----------------------------------------------------------------------------

/** One posting as a user's history shows it. */
export interface EntryView {
  id: number
  postingId: number
  kind: EntryKind
  category: Category
  amount: number
  counterpartyId: number | null
  ref: string | null
  memo: string | null
  createdAt: number
}

export interface EntryHeader {
  id: number
  kind: EntryKind
  ref: string | null
  memo: string | null
  actorId: number | null
  createdAt: number
}

export interface LedgerStore {
  /**
   * Appends one entry (checked against the posting rules) with its postings and balance
   * updates, atomically. Throws `DuplicateEntryError` when `(kind, ref)` exists.
   */
  append(entry: EntryInput): Promise<{ entryId: number }>
  account(userId: number): Promise<AccountRecord | undefined>
  entries(userId: number, options?: { before?: number; limit?: number }): Promise<EntryView[]>
  entryByRef(kind: EntryKind, ref: string): Promise<{ id: number } | undefined>
  entry(entryId: number): Promise<EntryHeader | undefined>
  /** The users with the highest balances, Anonymous and the system accounts excluded, highest first; `offset` skips that many (paging). */
  top(limit: number, offset?: number): Promise<Array<{ userId: number; username: string; balance: number }>>
}

// --- everything -----------------------------------------------------------------------------

export interface StoreEvents {
  /** After each commit, once per posting it made. */
  change: [BalanceChange]
}

/** One database, all its operations (the people-side ports are in people-ports.ts). */
export interface Store {
  readonly requests: RequestStore
  readonly workers: WorkerStore
  readonly ledger: LedgerStore
  readonly accounts: AccountStore
  readonly identities: IdentityStore
  /** Browser sessions (logout, log out everywhere, suspension). */
  readonly sessions: SessionStore
  readonly transfers: TransferStore
  readonly audit: AuditStore
  /** Roles, suspension, worker trust and pause, awards, and their audit trail. */
  readonly moderation: ModerationStore
  /** Balance changes, after commit. */
  readonly events: EventEmitter<StoreEvents>
  /** Which database: for logs, docs and the audit CLI. */
  readonly kind: 'sqlite' | 'postgres'
  /** True when the database answers a trivial query (throws or false when it does not): the health check. */
  health(): Promise<boolean>
  close(): Promise<void>
}
