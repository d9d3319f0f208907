/**
 * One bot's socket: decode each command once, admit it (in-flight cap, then the key's rate
 * limit), queue it, and answer it exactly once. Commands run in batches, one batch per
 * event-loop turn, so a bot pipelining thousands of commands cannot starve other sockets.
 *
 * "In flight" counts commands accepted and not yet answered: queued here, or running in the
 * store (a transfer waits for its group commit). The cap bounds both, and a command over it
 * is answered `slow_down` at once.
 *
 * Within a batch, commands start in order: transfers join the store's group commit in that
 * order (one transaction for the batch), and a read waits for the writes started before it,
 * so every command sees what the commands before it did. Answers go out in command order,
 * each exactly once; none after the socket closed or the key was revoked.
 */
import type { Principal } from '../accounts/accounts.js'
import type { BotConfig } from '../config.js'
import { BrokerError, isBrokerError } from '../errors.js'
import { entryView, publicUserView, totalsView, transferView } from '../protocol/views.js'
import type { Accounts } from '../accounts/accounts.js'
import type { Ledger } from '../ledger/ledger.js'
import type { Transfers } from '../ledger/transfers.js'
import { decodeBotCommand, type BotCommand, type BotErrorFrame, type EventFrame, type ReadyFrame, type ResultFrame } from '../protocol/bot.js'
import { CloseCode, PROTOCOL_VERSION, type RequestId } from '../protocol/envelope.js'
import type { Connection, SocketSession } from './connection.js'
import type { RateDecision } from './token-bucket.js'

/** What a session is handed by its channel: storage operations and the shared per-key state. */
export interface BotSessionContext {
  readonly ledger: Pick<Ledger, 'account' | 'entries'>
  readonly accounts: Pick<Accounts, 'byId' | 'byName' | 'isKeyActive'>
  readonly transfers: Pick<Transfers, 'transfer'>
  readonly config: BotConfig
  /** Takes one command token from the key's bucket. */
  takeToken(keyId: number): RateDecision
  /** Adds or removes the session from its user's event subscribers. */
  setSubscribed(session: BotSession, on: boolean): void
  /** The socket closed: forget the session. */
  forget(session: BotSession): void
  /** Where unexpected errors go (they reach the bot only as `internal`). */
  logError(error: unknown, message: string): void
}

type Answer = ResultFrame | BotErrorFrame

export class BotSession implements SocketSession {
  /** Commands accepted and not yet answered (queued or running). */
  private pending = 0
  private readonly queue: BotCommand[] = []
  /** A batch is scheduled or running: the next one starts after it, on a later turn. */
  private scheduled = false
  private subscribed = false
  /** Bumped when the session stops answering (closed, revoked): answers of an older epoch are dropped. */
  private epoch = 0

  constructor(readonly connection: Connection, readonly principal: Principal & { keyId: number }, private readonly ctx: BotSessionContext) {}

  /** Tells the bot who it is and its limits; the first frame on every bot socket. */
  greet(): void {
    const { config } = this.ctx
    const ready: ReadyFrame = {
      type: 'ready',
      protocol: PROTOCOL_VERSION,
      user: { id: this.principal.userId, username: this.principal.username },
      scopes: [...this.principal.scopes],
      limits: { max_in_flight: config.maxInFlight, commands_per_second: config.commandsPerSecond, burst: config.commandBurst },
    }
    this.connection.send(ready)
  }

  get userId(): number {
    return this.principal.userId
  }

  get keyId(): number {
    return this.principal.keyId
  }

  onMessage(data: unknown, isBinary: boolean): void {
    // Unknown types, missing ids, bad fields: coded, and counted toward the bad-frame limit.
    const command = this.connection.decode(decodeBotCommand, data, isBinary)
    if (!command) return
    if (this.pending >= this.ctx.config.maxInFlight) {
      this.fail(command.id, new BrokerError('slow_down', `More than ${this.ctx.config.maxInFlight} commands in flight: wait for replies`))
      return
    }
    const rate = this.ctx.takeToken(this.principal.keyId)
    if (!rate.ok) {
      this.fail(command.id, new BrokerError('too_many_requests', `Over ${this.ctx.config.commandsPerSecond} commands per second for this key`), rate.retryAfterMs)
      return
    }
    this.pending++
    this.queue.push(command)
    this.schedule()
  }

  onClose(): void {
    // Unanswered commands die with the socket: the bot retries them (with the same
    // idempotency keys) on a new one. Nothing queued may run for a closed session.
    this.queue.length = 0
    this.pending = 0
    this.epoch++
    this.ctx.forget(this)
  }

  /** Pushes an account event, if the bot subscribed. */
  push(event: EventFrame): void {
    if (this.subscribed) this.connection.send(event)
  }

  /** The key was revoked: tell the bot why, then close with 4401. */
  revoke(): void {
    this.queue.length = 0
    this.pending = 0
    this.epoch++
    this.fail(undefined, new BrokerError('key_revoked'))
    this.connection.close(CloseCode.Unauthorized, 'key_revoked')
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      void this.drain()
        .catch((error) => this.ctx.logError(error, 'bot batch failed'))
        .finally(() => {
          this.scheduled = false
          if (this.queue.length > 0 && !this.connection.closed) this.schedule()
        })
    })
  }

  private async drain(): Promise<void> {
    if (this.connection.closed) return
    const epoch = this.epoch
    // Once per batch, re-read the key: a revocation that reached this process only through
    // the database (another broker process wrote it) still stops the session here.
    if (!(await this.ctx.accounts.isKeyActive(this.principal.keyId))) {
      if (epoch === this.epoch && !this.connection.closed) this.revoke()
      return
    }
    if (epoch !== this.epoch || this.connection.closed) return
    const batch = this.queue.splice(0, this.ctx.config.batchSize)
    const answers: Array<Promise<Answer>> = []
    let writes: Array<Promise<Answer>> = []
    for (const command of batch) {
      if (command.type !== 'transfer' && writes.length > 0) {
        await Promise.all(writes)
        writes = []
      }
      if (epoch !== this.epoch || this.connection.closed) return
      const answer = this.answer(command)
      answers.push(answer)
      if (command.type === 'transfer') writes.push(answer)
    }
    for (const answer of answers) {
      const frame = await answer
      if (epoch !== this.epoch || this.connection.closed) return
      this.connection.send(frame)
      this.pending--
    }
  }

  /** Runs one command; never rejects: a failure is its error frame. */
  private async answer(command: BotCommand): Promise<Answer> {
    try {
      return await this.run(command)
    } catch (error) {
      if (isBrokerError(error)) return errorFrame(command.id, error)
      this.ctx.logError(error, `bot command ${command.type} failed`)
      return errorFrame(command.id, new BrokerError('internal'))
    }
  }

  /** The one dispatch: each command type, its rule, its answer. */
  private async run(command: BotCommand): Promise<ResultFrame> {
    const { ledger, accounts, transfers } = this.ctx
    const { id } = command
    const me = this.principal
    switch (command.type) {
      case 'transfer': {
        if (!me.scopes.has('transfer')) throw new BrokerError('insufficient_scope', 'This API key lacks the transfer scope')
        const result = await transfers.transfer({ senderId: me.userId, to: command.to, amount: command.amount, idempotencyKey: command.idempotencyKey, memo: command.memo })
        return { type: 'result', id, command: 'transfer', result: transferView(result) }
      }
      case 'balance': {
        const balance = (await ledger.account(me.userId))?.balance ?? 0
        return { type: 'result', id, command: 'balance', result: { id: me.userId, username: me.username, kudos: balance / 1000 } }
      }
      case 'account': {
        const user = await accounts.byId(me.userId)
        if (!user) throw new BrokerError('unknown_user')
        const account = await ledger.account(me.userId)
        return { type: 'result', id, command: 'account', result: { ...publicUserView(user, account?.balance ?? 0), totals: totalsView(account), scopes: [...me.scopes] } }
      }
      case 'ledger': {
        const limit = command.limit ?? 50
        const entries = await ledger.entries(me.userId, { before: command.before, limit })
        const last = entries.at(-1)
        return { type: 'result', id, command: 'ledger', result: { entries: entries.map(entryView), next_before: entries.length === limit && last ? last.postingId : null } }
      }
      case 'find_user': {
        const ref = command.user
        const user = typeof ref === 'number' || /^\d{1,15}$/.test(ref) ? await accounts.byId(Number(ref)) : await accounts.byName(ref)
        if (!user) throw new BrokerError('unknown_user', `No user ${JSON.stringify(ref)}`)
        return { type: 'result', id, command: 'find_user', result: publicUserView(user, (await ledger.account(user.id))?.balance ?? 0) }
      }
      case 'subscribe':
        this.subscribed = true
        this.ctx.setSubscribed(this, true)
        return { type: 'result', id, command: 'subscribe', result: { subscribed: true } }
      case 'unsubscribe':
        this.subscribed = false
        this.ctx.setSubscribed(this, false)
        return { type: 'result', id, command: 'unsubscribe', result: { subscribed: false } }
      default:
        return unreachable(command)
    }
  }

  private fail(id: RequestId | undefined, error: BrokerError, retryAfterMs?: number): void {
    this.connection.send(errorFrame(id, error, retryAfterMs))
  }
}

function errorFrame(id: RequestId | undefined, error: BrokerError, retryAfterMs?: number): BotErrorFrame {
  const frame: BotErrorFrame = { type: 'error', code: error.code, message: error.message }
  if (id !== undefined) frame.id = id
  if (error.details) frame.details = error.details
  if (retryAfterMs !== undefined) frame.retry_after_ms = retryAfterMs
  return frame
}

/** Makes the switch exhaustive: a new command type without a case fails to compile. */
function unreachable(command: never): never {
  throw new BrokerError('unknown_type', `Unknown command ${JSON.stringify((command as { type?: unknown }).type)}`)
}
