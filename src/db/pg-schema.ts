/**
 * The PostgreSQL schema: the same tables, columns, indexes and uniques as the SQLite schema
 * (src/db/schema.ts; test/schema-parity.test.ts compares the two migrated databases). Amounts
 * and times are `bigint` (milli-kudos and epoch milliseconds outgrow 32 bits), read as
 * JavaScript numbers. JSON columns stay `text`: the submission idempotency check compares
 * the stored text, and `jsonb` would reorder its keys. Migrations in migrations/pg/ are
 * generated from this file with `npm run db:generate:pg`.
 */
import { sql } from 'drizzle-orm'
import { bigint, bigserial, index, integer, pgTable, serial, text, uniqueIndex } from 'drizzle-orm/pg-core'

const int8 = (name: string) => bigint(name, { mode: 'number' })

export const users = pgTable('users', {
  id: serial('id').primaryKey(),
  username: text('username').notNull(),
  /** Lower-cased username, unique: names differ by more than case. */
  usernameKey: text('username_key').notNull(),
  createdAt: int8('created_at').notNull(),
  /** Roles such as `trusted`, `moderator`, `admin`, as JSON text. */
  roles: text('roles').notNull().default(sql`'[]'`),
  suspendedAt: int8('suspended_at'),
}, (t) => [uniqueIndex('users_username_key').on(t.usernameKey)])

export const apiKeys = pgTable('api_keys', {
  id: serial('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id),
  lookup: text('lookup').notNull(),
  secretHash: text('secret_hash').notNull(),
  name: text('name').notNull(),
  /** JSON text: `["all"]` or a subset of `read`, `transfer`, `generate`, `work`. */
  scopes: text('scopes').notNull(),
  createdAt: int8('created_at').notNull(),
  revokedAt: int8('revoked_at'),
}, (t) => [uniqueIndex('api_keys_lookup').on(t.lookup), index('api_keys_user').on(t.userId)])

/** Browser sessions the server still honours (see src/db/schema.ts). */
export const sessions = pgTable('sessions', {
  id: text('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id),
  createdAt: int8('created_at').notNull(),
  expiresAt: int8('expires_at').notNull(),
}, (t) => [index('sessions_user').on(t.userId), index('sessions_expires').on(t.expiresAt)])

export const identities = pgTable('identities', {
  id: serial('id').primaryKey(),
  provider: text('provider').notNull(),
  subject: text('subject').notNull(),
  userId: integer('user_id').notNull().references(() => users.id),
  displayName: text('display_name'),
  createdAt: int8('created_at').notNull(),
  lastLoginAt: int8('last_login_at'),
}, (t) => [uniqueIndex('identities_provider_subject').on(t.provider, t.subject), index('identities_user').on(t.userId)])

/** One row per user, written only by the ledger, in the same transaction as the postings. */
export const balances = pgTable('balances', {
  userId: integer('user_id').primaryKey().references(() => users.id),
  balance: int8('balance').notNull().default(0),
  earnedGeneration: int8('earned_generation').notNull().default(0),
  earnedUptime: int8('earned_uptime').notNull().default(0),
  spent: int8('spent').notNull().default(0),
  sent: int8('sent').notNull().default(0),
  received: int8('received').notNull().default(0),
  awarded: int8('awarded').notNull().default(0),
  unfunded: int8('unfunded').notNull().default(0),
}, (t) => [index('balances_balance').on(t.balance)])

/** A journal entry: one economic event, made of postings. Append-only. `(kind, ref)` unique. */
export const ledgerEntries = pgTable('ledger_entries', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  kind: text('kind').notNull(),
  ref: text('ref'),
  minted: int8('minted').notNull().default(0),
  memo: text('memo'),
  actorId: integer('actor_id'),
  createdAt: int8('created_at').notNull(),
}, (t) => [uniqueIndex('ledger_entries_kind_ref').on(t.kind, t.ref)])

/** Signed amounts per account; the postings of an entry sum to its `minted`. Append-only. */
export const postings = pgTable('postings', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  entryId: int8('entry_id').notNull().references(() => ledgerEntries.id),
  userId: integer('user_id').notNull().references(() => users.id),
  amount: int8('amount').notNull(),
  category: text('category').notNull(),
  counterpartyId: integer('counterparty_id'),
  createdAt: int8('created_at').notNull(),
}, (t) => [index('postings_user').on(t.userId, t.id), index('postings_entry').on(t.entryId)])

export const transfers = pgTable('transfers', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  senderId: integer('sender_id').notNull().references(() => users.id),
  recipientId: integer('recipient_id').notNull().references(() => users.id),
  amount: int8('amount').notNull(),
  memo: text('memo'),
  idempotencyKey: text('idempotency_key').notNull(),
  fingerprint: text('fingerprint').notNull(),
  entryId: int8('entry_id').notNull().references(() => ledgerEntries.id),
  createdAt: int8('created_at').notNull(),
}, (t) => [uniqueIndex('transfers_idempotency').on(t.senderId, t.idempotencyKey), index('transfers_entry').on(t.entryId)])

export const workers = pgTable('workers', {
  id: serial('id').primaryKey(),
  name: text('name').notNull(),
  ownerId: integer('owner_id').notNull().references(() => users.id),
  createdAt: int8('created_at').notNull(),
  lastSeenAt: int8('last_seen_at'),
  uptimeMs: int8('uptime_ms').notNull().default(0),
  jobs: int8('jobs').notNull().default(0),
  tokens: int8('tokens').notNull().default(0),
  earned: int8('earned').notNull().default(0),
  boundedJobs: int8('bounded_jobs').notNull().default(0),
  flaggedAt: int8('flagged_at'),
  trusted: integer('trusted').notNull().default(0),
  pausedAt: int8('paused_at'),
  pausedReason: text('paused_reason'),
}, (t) => [uniqueIndex('workers_name').on(t.name)])

/** Every accepted generation request, recorded before it is acknowledged. */
export const requests = pgTable('requests', {
  id: text('id').primaryKey(),
  userId: integer('user_id').notNull().references(() => users.id),
  state: text('state').notNull(),
  prompt: text('prompt').notNull(),
  /** JSON text, exactly as submitted (the idempotency check compares it). */
  params: text('params').notNull(),
  clientIp: text('client_ip'),
  createdAt: int8('created_at').notNull(),
  finishedAt: int8('finished_at'),
  workerId: integer('worker_id'),
  workerName: text('worker_name'),
  model: text('model'),
  text: text('text'),
  tokens: int8('tokens'),
  kudos: int8('kudos'),
  error: text('error'),
  idempotencyKey: text('idempotency_key'),
  capabilityHash: text('capability_hash'),
}, (t) => [
  index('requests_user_state').on(t.userId, t.state),
  index('requests_state').on(t.state),
  uniqueIndex('requests_idempotency').on(t.userId, t.idempotencyKey),
])

/** The operators' audit trail (see schema.ts). `details` is JSON text. */
export const adminActions = pgTable('admin_actions', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  actorId: integer('actor_id'),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  targetUserId: integer('target_user_id'),
  targetWorkerId: integer('target_worker_id'),
  target: text('target').notNull(),
  reason: text('reason').notNull(),
  details: text('details').notNull().default(sql`'{}'`),
  createdAt: int8('created_at').notNull(),
}, (t) => [index('admin_actions_user').on(t.targetUserId, t.id), index('admin_actions_worker').on(t.targetWorkerId, t.id)])
