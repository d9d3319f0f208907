/** How accounts and ledger rows are shown over the API: kudos as decimals, times as ISO text. */
import type { Account, EntryView } from '../ledger/ledger.js'
import type { User } from '../db/schema.js'
import { toKudos } from '../ledger/amounts.js'
import type { TransferResult } from '../ledger/transfers.js'

export function totalsView(account: Account | undefined) {
  return {
    earned_generation: toKudos(account?.earnedGeneration ?? 0),
    earned_uptime: toKudos(account?.earnedUptime ?? 0),
    spent: toKudos(account?.spent ?? 0),
    sent: toKudos(account?.sent ?? 0),
    received: toKudos(account?.received ?? 0),
    awarded: toKudos(account?.awarded ?? 0),
  }
}

export function publicUserView(user: Pick<User, 'id' | 'username' | 'createdAt' | 'roles'>, balance: number) {
  return { id: user.id, username: user.username, kudos: toKudos(balance), created_at: new Date(user.createdAt).toISOString(), roles: user.roles }
}

export function entryView(entry: EntryView) {
  return {
    id: entry.id,
    posting_id: entry.postingId,
    kind: entry.kind,
    category: entry.category,
    amount: toKudos(entry.amount),
    counterparty_id: entry.counterpartyId,
    ref: entry.ref,
    memo: entry.memo,
    created_at: new Date(entry.createdAt).toISOString(),
  }
}

/** A transfer as both doors show it (REST and the bot channel answer alike). */
export function transferView(result: TransferResult) {
  return {
    id: result.id,
    from: result.from,
    to: result.to,
    amount: toKudos(result.amount),
    memo: result.memo,
    created_at: new Date(result.createdAt).toISOString(),
    replayed: result.replayed,
  }
}
