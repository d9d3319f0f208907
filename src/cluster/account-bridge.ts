/**
 * Account happenings that every process must hear, carried on the control bus: a revoked
 * key (each process closes the sockets the key opened there) and a ledger posting (each
 * process's bots hear of it, its queues re-prioritize). The process where it happened
 * publishes it; the others re-emit it on their own account and ledger emitters, so the
 * gateways and the core listen in one place whatever process the change came from.
 */
import type { EventEmitter } from 'node:events'
import type { BalanceChange } from '../economy/posting-rules.js'
import type { ControlBus } from './ports.js'

/** Marks a change re-emitted from another process (listeners that count postings skip it). */
export const REMOTE = Symbol('remote change')
export const isRemote = (change: BalanceChange): boolean => (change as { [REMOTE]?: boolean })[REMOTE] === true

export interface AccountBridgeDeps {
  control: ControlBus
  /** This process's id (the registry's). */
  processId: string
  accounts: EventEmitter<{ revoked: [keyId: number] }>
  ledger: EventEmitter<{ change: [change: BalanceChange] }>
  log(error: unknown): void
}

/** Returns the function that stops the bridge. */
export function bridgeAccounts(deps: AccountBridgeDeps): () => void {
  const { control, processId: origin, accounts, ledger, log } = deps
  const fromBus = new Set<number>()
  const onRevoked = (keyId: number) => {
    if (fromBus.has(keyId)) return
    void control.publish({ type: 'key_revoked', keyId, origin }).catch(log)
  }
  const onChange = (change: BalanceChange) => {
    if (isRemote(change)) return
    void control.publish({ type: 'balance_changed', userId: change.userId, balance: change.balance, change, origin }).catch(log)
  }
  const offRevoked = control.on('key_revoked', (message) => {
    if (message.origin === origin) return
    fromBus.add(message.keyId)
    try {
      accounts.emit('revoked', message.keyId)
    } finally {
      fromBus.delete(message.keyId)
    }
  })
  const offChange = control.on('balance_changed', (message) => {
    if (message.origin === origin || !message.change) return
    ledger.emit('change', { ...message.change, [REMOTE]: true } as BalanceChange)
  })
  accounts.on('revoked', onRevoked)
  ledger.on('change', onChange)
  return () => {
    accounts.off('revoked', onRevoked)
    ledger.off('change', onChange)
    offRevoked()
    offChange()
  }
}
