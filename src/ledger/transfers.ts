/**
 * Kudos transfers between users: the one operation behind both the REST endpoint and the
 * bot command, so that rules and idempotency keys are shared by both doors.
 */
import { createHash } from 'node:crypto'
import { ANONYMOUS_ID, isSystemAccount } from '../economy/anonymous.js'
import { BrokerError } from '../errors.js'
import type { Store, UserRecord } from '../store/ports.js'
import { awardEntry } from './ledger.js'
import { parseKudos } from '../economy/amounts.js'

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
  transfer(request: TransferRequest): Promise<TransferResult>
  /** Mints kudos for a user (moderators and admins); recorded with the actor and memo. */
  award(request: AwardRequest): Promise<{ entryId: number; to: { id: number; username: string }; amount: number }>
}

function checkMemo(memo: unknown): asserts memo is string | null {
  if (memo !== null && (typeof memo !== 'string' || memo.length > MAX_MEMO_CHARS)) {
    throw new BrokerError('validation_failed', `memo must be a string of at most ${MAX_MEMO_CHARS} characters`)
  }
}

export function createTransfers(store: Pick<Store, 'accounts' | 'transfers'>, options: { maxKudos: number }): Transfers {
  const { accounts, transfers } = store
  const named = (user: UserRecord) => ({ id: user.id, username: user.username })

  async function resolveUser(to: string | number): Promise<UserRecord | undefined> {
    if (typeof to === 'number') {
      if (!Number.isSafeInteger(to) || to < 0) throw new BrokerError('unknown_user')
      return accounts.byId(to)
    }
    if (typeof to !== 'string' || to.length === 0 || to.length > 100) throw new BrokerError('unknown_user')
    if (/^#\d{1,15}$/.test(to)) return resolveUser(Number(to.slice(1)))
    return accounts.byName(to)
  }

  return {
    async transfer(request) {
      const key = request.idempotencyKey
      if (typeof key !== 'string' || key.length === 0) throw new BrokerError('idempotency_key_required')
      if (key.length > MAX_IDEMPOTENCY_KEY_CHARS) throw new BrokerError('validation_failed', `Idempotency key longer than ${MAX_IDEMPOTENCY_KEY_CHARS} characters`)
      const memo = request.memo ?? null
      checkMemo(memo)
      const amount = parseKudos(request.amount, options.maxKudos)
      if (request.senderId === ANONYMOUS_ID) throw new BrokerError('anonymous_transfer')

      // Users are never deleted or renamed: reading them before the write sees what the write would.
      const found = await resolveUser(request.to)
      if (!found) throw new BrokerError('unknown_user', `No user ${JSON.stringify(request.to)}`)
      const recipient = named(found)
      const fingerprint = createHash('sha256').update(JSON.stringify([recipient.id, amount, memo])).digest('hex')
      const senderRow = await accounts.byId(request.senderId)
      if (!senderRow) throw new BrokerError('unknown_user', 'The sender does not exist')
      // Read from the database on every transfer, so a suspension made anywhere applies at once.
      if (senderRow.suspendedAt !== null) throw new BrokerError('user_suspended', 'This account is suspended by a moderator: it cannot send kudos')
      const sender = named(senderRow)

      // A used key answers before the rules below (as a conflict or a replay); the store
      // checks it again inside the write, where a racing retry is decided.
      const replay = (previous: { id: number; amount: number; memo: string | null; createdAt: number; fingerprint: string }): TransferResult => {
        if (previous.fingerprint !== fingerprint) throw new BrokerError('idempotency_conflict')
        return { id: previous.id, from: sender, to: recipient, amount: previous.amount, memo: previous.memo, createdAt: previous.createdAt, replayed: true }
      }
      const earlier = await transfers.byKey(sender.id, key)
      if (earlier) return replay(earlier)

      if (recipient.id === sender.id) throw new BrokerError('self_transfer')
      if (recipient.id === ANONYMOUS_ID) throw new BrokerError('anonymous_transfer')
      // The system account of unfunded rewards is no one's: nothing is sent to it.
      if (isSystemAccount(recipient.id)) throw new BrokerError('unknown_user')
      const createdAt = Date.now()
      const { transfer, replayed } = await transfers.transfer({
        senderId: sender.id, recipientId: recipient.id, amount, memo, idempotencyKey: key, fingerprint, createdAt,
        entry: {
          kind: 'transfer',
          ref: `${sender.id}:${key}`,
          memo,
          actorId: sender.id,
          postings: [
            { userId: sender.id, amount: -amount, category: 'sent', counterpartyId: recipient.id },
            { userId: recipient.id, amount, category: 'received', counterpartyId: sender.id },
          ],
        },
      })
      if (replayed) return replay(transfer)
      return { id: transfer.id, from: sender, to: recipient, amount, memo, createdAt, replayed: false }
    },

    async award(request) {
      const memo = request.memo ?? null
      checkMemo(memo)
      const amount = parseKudos(request.amount, options.maxKudos)
      const found = await resolveUser(request.to)
      if (!found) throw new BrokerError('unknown_user', `No user ${JSON.stringify(request.to)}`)
      const { entryId } = await transfers.award(awardEntry({ userId: found.id, amount, memo, actorId: request.actorId }))
      return { entryId, to: named(found), amount }
    },
  }
}
