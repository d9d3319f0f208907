/**
 * Kudos transfers between users: the one operation behind both the REST endpoint and the
 * bot command, so that rules and idempotency keys are shared by both doors.
 */
import { createHash } from 'node:crypto'
import { and, eq, sql } from 'drizzle-orm'
import { ANONYMOUS_ID } from '../db/open.js'
import { balances, transfers, users } from '../db/schema.js'
import type { Db } from '../db/open.js'
import { BrokerError } from '../errors.js'
import type { Ledger } from './ledger.js'
import { parseKudos } from './amounts.js'

export const MAX_MEMO_CHARS = 500
export const MAX_IDEMPOTENCY_KEY_CHARS = 200

export interface TransferRequest {
  senderId: number
  /** Recipient username, or numeric id (a number, or a string of digits prefixed with `#`). */
  to: string | number
  /** Kudos, as given by the caller: parsed here so that both doors apply one rule. */
  amount: unknown
  idempotencyKey: string | undefined
  memo?: string | null
}

export interface TransferResult {
  id: number
  from: { id: number; username: string }
  to: { id: number; username: string }
  /** Milli-kudos moved. */
  amount: number
  memo: string | null
  createdAt: number
  /** True when this answer is the stored result of an earlier call with the same key. */
  replayed: boolean
}

export interface AwardRequest {
  actorId: number
  to: string | number
  amount: unknown
  memo?: string | null
}

export interface Transfers {
  transfer(request: TransferRequest): TransferResult
  /** Mints kudos for a user (moderators and admins); recorded with the actor and memo. */
  award(request: AwardRequest): { entryId: number; to: { id: number; username: string }; amount: number }
}

export function createTransfers(db: Db, ledger: Ledger, options: { maxKudos: number }): Transfers {
  // Prepared once: building and preparing each query per call cost more CPU than the writes.
  const userById = db.select({ id: users.id, username: users.username }).from(users).where(eq(users.id, sql.placeholder('id'))).prepare()
  const userByKey = db.select({ id: users.id, username: users.username }).from(users).where(eq(users.usernameKey, sql.placeholder('key'))).prepare()
  const previousTransfer = db.select().from(transfers)
    .where(and(eq(transfers.senderId, sql.placeholder('senderId')), eq(transfers.idempotencyKey, sql.placeholder('key')))).prepare()
  const balanceOf = db.select({ balance: balances.balance }).from(balances).where(eq(balances.userId, sql.placeholder('userId'))).prepare()
  const insertTransfer = db.insert(transfers).values({
    senderId: sql.placeholder('senderId'), recipientId: sql.placeholder('recipientId'), amount: sql.placeholder('amount'), memo: sql.placeholder('memo'),
    idempotencyKey: sql.placeholder('idempotencyKey'), fingerprint: sql.placeholder('fingerprint'), entryId: sql.placeholder('entryId'), createdAt: sql.placeholder('createdAt'),
  }).returning({ id: transfers.id }).prepare()

  function resolveUser(to: string | number) {
    if (typeof to === 'number') {
      if (!Number.isSafeInteger(to) || to < 0) throw new BrokerError('unknown_user')
      return userById.get({ id: to })
    }
    if (typeof to !== 'string' || to.length === 0 || to.length > 100) throw new BrokerError('unknown_user')
    if (/^#\d{1,15}$/.test(to)) return resolveUser(Number(to.slice(1)))
    return userByKey.get({ key: to.toLowerCase() })
  }

  return {
    transfer(request) {
      const key = request.idempotencyKey
      if (typeof key !== 'string' || key.length === 0) throw new BrokerError('idempotency_key_required')
      if (key.length > MAX_IDEMPOTENCY_KEY_CHARS) throw new BrokerError('validation_failed', `Idempotency key longer than ${MAX_IDEMPOTENCY_KEY_CHARS} characters`)
      const memo = request.memo ?? null
      if (memo !== null && (typeof memo !== 'string' || memo.length > MAX_MEMO_CHARS)) {
        throw new BrokerError('validation_failed', `memo must be a string of at most ${MAX_MEMO_CHARS} characters`)
      }
      const amount = parseKudos(request.amount, options.maxKudos)
      if (request.senderId === ANONYMOUS_ID) throw new BrokerError('anonymous_transfer')

      return ledger.run((_tx, post) => {
        const recipient = resolveUser(request.to)
        if (!recipient) throw new BrokerError('unknown_user', `No user ${JSON.stringify(request.to)}`)
        const fingerprint = createHash('sha256').update(JSON.stringify([recipient.id, amount, memo])).digest('hex')
        const sender = userById.get({ id: request.senderId })
        if (!sender) throw new BrokerError('unknown_user', 'The sender does not exist')

        const previous = previousTransfer.get({ senderId: request.senderId, key })
        if (previous) {
          if (previous.fingerprint !== fingerprint) throw new BrokerError('idempotency_conflict')
          return { id: previous.id, from: sender, to: recipient, amount: previous.amount, memo: previous.memo, createdAt: previous.createdAt, replayed: true }
        }

        if (recipient.id === sender.id) throw new BrokerError('self_transfer')
        if (recipient.id === ANONYMOUS_ID) throw new BrokerError('anonymous_transfer')
        const balance = balanceOf.get({ userId: sender.id })?.balance ?? 0
        if (amount > Math.max(balance, 0)) {
          throw new BrokerError('insufficient_kudos', undefined, { balance: balance / 1000, amount: amount / 1000 })
        }

        const createdAt = Date.now()
        const entryId = post({
          kind: 'transfer',
          ref: `${sender.id}:${key}`,
          memo,
          actorId: sender.id,
          postings: [
            { userId: sender.id, amount: -amount, category: 'sent', counterpartyId: recipient.id },
            { userId: recipient.id, amount, category: 'received', counterpartyId: sender.id },
          ],
        })
        const row = insertTransfer.get({ senderId: sender.id, recipientId: recipient.id, amount, memo, idempotencyKey: key, fingerprint, entryId, createdAt })!
        return { id: row.id, from: sender, to: recipient, amount, memo, createdAt, replayed: false }
      })
    },

    award(request) {
      const memo = request.memo ?? null
      if (memo !== null && (typeof memo !== 'string' || memo.length > MAX_MEMO_CHARS)) {
        throw new BrokerError('validation_failed', `memo must be a string of at most ${MAX_MEMO_CHARS} characters`)
      }
      const amount = parseKudos(request.amount, options.maxKudos)
      return ledger.run((_tx, post) => {
        const recipient = resolveUser(request.to)
        if (!recipient) throw new BrokerError('unknown_user', `No user ${JSON.stringify(request.to)}`)
        const entryId = post({
          kind: 'award',
          memo,
          actorId: request.actorId,
          postings: [{ userId: recipient.id, amount, category: 'awarded', counterpartyId: request.actorId }],
        })
        return { entryId, to: recipient, amount }
      })
    },
  }
}
