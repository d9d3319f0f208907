/**
 * The SQLite schema. Amounts are integer milli-kudos (1 kudo = 1000). Migrations in
 * migrations/ are generated from this file with `npm run db:generate`.
 */
import { sql } from 'drizzle-orm'
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'

export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  username: text('username').notNull(),
  /** Lower-cased username, unique: names differ by more than case. */
  usernameKey: text('username_key').notNull(),
  createdAt: integer('created_at').notNull(),
  /** Roles such as `trusted`, `moderator`, `admin`. */
  roles: text('roles', { mode: 'json' }).$type<string[]>().notNull().default(sql`'[]'`),
  /** Set while a moderator has suspended the user: no new requests, no transfers out, no workers. */
  suspendedAt: integer('suspended_at'),
}, (t) => [uniqueIndex('users_username_key').on(t.usernameKey)])

export const apiKeys = sqliteTable('api_keys', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  userId: integer('user_id').notNull().references(() => users.id),
  /** Public part of the key, used to find it; the secret part is stored only as a hash. */
  lookup: text('lookup').notNull(),
  /** SHA-256 of the secret part, hex. */
  secretHash: text('secret_hash').notNull(),
  name: text('name').notNull(),
  /** `all` or a subset of `read`, `transfer`, `generate`, `work`. */
  scopes: text('scopes', { mode: 'json' }).$type<string[]>().notNull(),
  createdAt: integer('created_at').notNull(),
  revokedAt: integer('revoked_at'),
}, (t) => [uniqueIndex('api_keys_lookup').on(t.lookup), index('api_keys_user').on(t.userId)])

/**
 * Browser sessions the server still honours. The cookie carries a random nonce; this row,
 * keyed by the nonce's SHA-256, is what makes it valid: logout deletes the row, "log out
 * everywhere" and a suspension delete all of a user's rows, so a copied cookie stops working
 * on every broker process sharing the database.
 */
export const sessions = sqliteTable('sessions', {
  /** SHA-256 of the cookie's nonce, hex. */
  id: text('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
}, (t) => [index('sessions_user').on(t.userId), index('sessions_expires').on(t.expiresAt)])

/**
 * A login at an OAuth provider linked to a user: the provider's stable user id (`subject`),
 * never its display name, finds the user again. A user may link several providers.
 */
export const identities = sqliteTable('identities', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  /** `discord` | `github` | `google` */
  provider: text('provider').notNull(),
  /** The provider's id for the user (GitHub/Discord `id`, Google `sub`), as text. */
  subject: text('subject').notNull(),
  userId: integer('user_id').notNull().references(() => users.id),
  /** The provider's name for the user at the last login, shown on the account page. */
  displayName: text('display_name'),
  createdAt: integer('created_at').notNull(),
  lastLoginAt: integer('last_login_at'),
}, (t) => [uniqueIndex('identities_provider_subject').on(t.provider, t.subject), index('identities_user').on(t.userId)])

/** One row per user, written only by the ledger, in the same transaction as the postings. */
export const balances = sqliteTable('balances', {
  userId: integer('user_id').primaryKey().references(() => users.id),
  balance: integer('balance').notNull().default(0),
  earnedGeneration: integer('earned_generation').notNull().default(0),
  earnedUptime: integer('earned_uptime').notNull().default(0),
  spent: integer('spent').notNull().default(0),
  sent: integer('sent').notNull().default(0),
  received: integer('received').notNull().default(0),
  awarded: integer('awarded').notNull().default(0),
  /** Credits of rewards a payer's debt could not fund past its credit line (only the system account has them). */
  unfunded: integer('unfunded').notNull().default(0),
}, (t) => [index('balances_balance').on(t.balance)])

/** A journal entry: one economic event, made of postings. Append-only. */
export const ledgerEntries = sqliteTable('ledger_entries', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  /** generation | uptime | transfer | award */
  kind: text('kind').notNull(),
  /** What the entry is about: a request id, a transfer id, a worker uptime batch. Unique per kind. */
  ref: text('ref'),
  /** Kudos created by this entry (uptime, award); 0 for entries that only move kudos. */
  minted: integer('minted').notNull().default(0),
  memo: text('memo'),
  actorId: integer('actor_id'),
  createdAt: integer('created_at').notNull(),
}, (t) => [uniqueIndex('ledger_entries_kind_ref').on(t.kind, t.ref)])

/** Signed amounts per account; the postings of an entry sum to its `minted`. Append-only. */
export const postings = sqliteTable('postings', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  entryId: integer('entry_id').notNull().references(() => ledgerEntries.id),
  userId: integer('user_id').notNull().references(() => users.id),
  amount: integer('amount').notNull(),
  /** The balance category this posting counts toward. */
  category: text('category').notNull(),
  counterpartyId: integer('counterparty_id'),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('postings_user').on(t.userId, t.id), index('postings_entry').on(t.entryId)])

export const transfers = sqliteTable('transfers', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  senderId: integer('sender_id').notNull().references(() => users.id),
  recipientId: integer('recipient_id').notNull().references(() => users.id),
  amount: integer('amount').notNull(),
  memo: text('memo'),
  idempotencyKey: text('idempotency_key').notNull(),
  /** Fingerprint of the transfer's content, to tell a replay from a conflicting reuse of the key. */
  fingerprint: text('fingerprint').notNull(),
  entryId: integer('entry_id').notNull().references(() => ledgerEntries.id),
  createdAt: integer('created_at').notNull(),
}, (t) => [uniqueIndex('transfers_idempotency').on(t.senderId, t.idempotencyKey), index('transfers_entry').on(t.entryId)])

export const workers = sqliteTable('workers', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull(),
  ownerId: integer('owner_id').notNull().references(() => users.id),
  createdAt: integer('created_at').notNull(),
  lastSeenAt: integer('last_seen_at'),
  /** Milliseconds of observed online time credited so far. */
  uptimeMs: integer('uptime_ms').notNull().default(0),
  jobs: integer('jobs').notNull().default(0),
  tokens: integer('tokens').notNull().default(0),
  /** Milli-kudos earned by generation and uptime. */
  earned: integer('earned').notNull().default(0),
  /** Settled jobs whose text came faster than the model's plausible speed (billed at the bound). */
  boundedJobs: integer('bounded_jobs').notNull().default(0),
  /** When the worker was flagged for moderators as one that keeps hitting the plausibility bounds; null: not flagged. */
  flaggedAt: integer('flagged_at'),
  /** 1 when a moderator marked the worker trusted (it may serve requests that ask for trusted workers only). */
  trusted: integer('trusted').notNull().default(0),
  /** Set while a moderator has paused the worker: it stays connected and gets no jobs. */
  pausedAt: integer('paused_at'),
  /** The moderator's reason for the pause, told to the worker. */
  pausedReason: text('paused_reason'),
}, (t) => [uniqueIndex('workers_name').on(t.name)])

/** Every accepted generation request, recorded before it is acknowledged. */
export const requests = sqliteTable('requests', {
  id: text('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id),
  /** waiting | done | failed | cancelled | expired (running lives in the queue) */
  state: text('state').notNull(),
  prompt: text('prompt').notNull(),
  /** The request as submitted: models, lengths, sampler parameters. */
  params: text('params', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
  clientIp: text('client_ip'),
  createdAt: integer('created_at').notNull(),
  finishedAt: integer('finished_at'),
  workerId: integer('worker_id'),
  workerName: text('worker_name'),
  model: text('model'),
  text: text('text'),
  tokens: integer('tokens'),
  /** Milli-kudos paid. */
  kudos: integer('kudos'),
  error: text('error'),
  /** The client's key for safe retries of a submission (anonymous keys are prefixed with the address). */
  idempotencyKey: text('idempotency_key'),
  /** SHA-256 (hex) of the request's capability, the secret its submitter got; null when no capability is needed (a logged-in requester's request, or one made through the AI Horde v2 door). */
  capabilityHash: text('capability_hash'),
}, (t) => [
  index('requests_user_state').on(t.userId, t.state),
  index('requests_state').on(t.state),
  uniqueIndex('requests_idempotency').on(t.userId, t.idempotencyKey),
])

/**
 * The operators' audit trail: every moderation and admin action (roles, suspension, worker
 * trust and pause, awards), who did it, why and when. Written in the same transaction as the
 * change it records; append-only. Broker processes also read it as the feed of changes made
 * behind their back (by `horde-admin` on the database).
 */
export const adminActions = sqliteTable('admin_actions', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  /** The user who acted; null for the operator on the database (`horde-admin`) or start-up (`ADMIN_USERS`). */
  actorId: integer('actor_id'),
  /** The actor as shown: a username, `cli:<os user>`, or `ADMIN_USERS`. */
  actor: text('actor').notNull(),
  /** role_grant | role_revoke | user_suspend | user_unsuspend | sessions_end | worker_trust | worker_untrust | worker_pause | worker_unpause | award */
  action: text('action').notNull(),
  targetUserId: integer('target_user_id'),
  targetWorkerId: integer('target_worker_id'),
  /** The target's name at the time. */
  target: text('target').notNull(),
  reason: text('reason').notNull(),
  /** What else the action carries (a role, an amount and its ledger entry), as JSON. */
  details: text('details', { mode: 'json' }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  createdAt: integer('created_at').notNull(),
}, (t) => [index('admin_actions_user').on(t.targetUserId, t.id), index('admin_actions_worker').on(t.targetWorkerId, t.id)])

export type User = typeof users.$inferSelect
export type Identity = typeof identities.$inferSelect
export type Balance = typeof balances.$inferSelect
export type RequestRow = typeof requests.$inferSelect
