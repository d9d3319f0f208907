/**
 * This process's bot sessions and what they share: the per-key rate limit, the index of
 * sessions by key (to close them when their key is revoked) and by user (to push account
 * events). One ledger listener and one revocation listener serve every bot socket.
 *
 * With CLUSTER=on, ledger changes and revocations of the other processes arrive on the same
 * emitters (src/cluster/account-bridge.ts); each session also re-reads its key once per
 * batch of commands.
 */
import type { Accounts, Principal } from '../accounts/accounts.js'
import type { BotConfig } from '../config.js'
import type { BalanceChange, Ledger } from '../ledger/ledger.js'
import type { Transfers } from '../ledger/transfers.js'
import type { Metrics } from '../metrics.js'
import { toKudos } from '../economy/amounts.js'
import { EVENT_OF_CATEGORY, type EventFrame } from '../protocol/bot.js'
import { BotSession } from './bot-session.js'
import type { Connection } from './connection.js'
import { KeyedTokenBuckets } from './token-bucket.js'

export interface BotChannelDeps {
  readonly ledger: Ledger
  readonly accounts: Accounts
  readonly transfers: Transfers
  readonly metrics: Pick<Metrics, 'botsConnected'>
  readonly config: BotConfig
}

export interface BotChannel {
  /** Starts a session on an authenticated connection (a registered user's key) and greets the bot. */
  open(connection: Connection, principal: Principal, logError: (error: unknown, message: string) => void): BotSession
  /** Sessions open in this process. */
  readonly size: number
  /** Detaches from the ledger and accounts (the app is closing). */
  stop(): void
}

export function createBotChannel(deps: BotChannelDeps): BotChannel {
  const { ledger, accounts, transfers, metrics, config } = deps
  const limiter = new KeyedTokenBuckets<number>({ rate: config.commandsPerSecond, burst: config.commandBurst })
  const byKey = new Map<number, Set<BotSession>>()
  const subscribers = new Map<number, Set<BotSession>>()
  const sessions = new Set<BotSession>()

  function addTo<K>(index: Map<K, Set<BotSession>>, key: K, session: BotSession): void {
    let set = index.get(key)
    if (!set) index.set(key, (set = new Set()))
    set.add(session)
  }

  function removeFrom<K>(index: Map<K, Set<BotSession>>, key: K, session: BotSession): void {
    const set = index.get(key)
    if (!set) return
    set.delete(session)
    if (set.size === 0) index.delete(key)
  }

  async function eventOf(change: BalanceChange): Promise<EventFrame> {
    const counterparty = change.counterpartyId === null ? undefined : await accounts.byId(change.counterpartyId)
    return {
      type: 'event',
      event: EVENT_OF_CATEGORY[change.category],
      entry_id: change.entryId,
      amount: toKudos(change.delta),
      balance: toKudos(change.balance),
      counterparty: counterparty ? { id: counterparty.id, username: counterparty.username } : null,
      memo: (await ledger.entry(change.entryId))?.memo ?? null,
      ref: change.ref,
      at: new Date(change.at).toISOString(),
    }
  }

  // Both listeners run inside the store's or the accounts' caller (a commit, a REST
  // request): they must never throw into it, whatever one socket does.
  async function deliver(change: BalanceChange, targets: BotSession[]): Promise<void> {
    let event: EventFrame
    try {
      event = await eventOf(change)
    } catch {
      return // an event lost is better than a committed transfer reported as failed
    }
    // The sessions subscribed when the change committed (push skips one that unsubscribed since).
    for (const session of targets) {
      try {
        session.push(event)
      } catch { /* one broken socket must not cost the others their event */ }
    }
  }
  // Events are built one after another, so each user sees their changes in commit order.
  let delivering: Promise<void> = Promise.resolve()
  const onChange = (change: BalanceChange): void => {
    const targets = subscribers.get(change.userId)
    if (!targets) return
    const now = [...targets]
    delivering = delivering.then(() => deliver(change, now))
  }

  const onRevoked = (keyId: number): void => {
    const targets = byKey.get(keyId)
    if (!targets) return
    for (const session of [...targets]) {
      try {
        session.revoke()
      } catch { /* the socket is gone already */ }
    }
  }

  ledger.events.on('change', onChange)
  accounts.events.on('revoked', onRevoked)

  const context = {
    ledger,
    accounts,
    transfers,
    config,
    takeToken: (keyId: number) => limiter.take(keyId),
    setSubscribed(session: BotSession, on: boolean) {
      if (on) addTo(subscribers, session.userId, session)
      else removeFrom(subscribers, session.userId, session)
    },
    forget(session: BotSession) {
      removeFrom(byKey, session.keyId, session)
      removeFrom(subscribers, session.userId, session)
      metrics.botsConnected.dec()
      sessions.delete(session)
      // Buckets of keys that went quiet are full again and need no memory.
      if (!byKey.has(session.keyId)) limiter.sweep()
    },
  }

  return {
    open(connection, principal, logError) {
      // registerSocketRoute refuses the Anonymous account, so every bot has a key.
      if (principal.keyId === null) throw new Error('bot sessions need an API key')
      const session = new BotSession(connection, { ...principal, keyId: principal.keyId }, { ...context, logError })
      sessions.add(session)
      addTo(byKey, principal.keyId, session)
      metrics.botsConnected.inc()
      session.greet()
      return session
    },
    get size() {
      return sessions.size
    },
    stop() {
      ledger.events.off('change', onChange)
      accounts.events.off('revoked', onRevoked)
    },
  }
}
