/**
 * The client channel's adapter: one client socket. Submits, attaches and cancels go to the
 * core's generation API; each watched request's events come back already serialized and
 * are written to the socket as they are. Errors become coded error frames.
 */
import type { Principal } from '../accounts/accounts.js'
import type { Subscription } from '../cluster/ports.js'
import type { Caller, ChunkPlace, Generations } from '../core/generations.js'
import type { PositionFeed } from '../core/position-feed.js'
import { BrokerError } from '../errors.js'
import { clientSchemas, type ClientMessage } from '../protocol/client.js'
import { createDecoder } from '../protocol/envelope.js'
import type { Connection, SocketSession } from './connection.js'
import { isPending, type RateLimiter } from '../limits/ports.js'

const decode = createDecoder<ClientMessage>(clientSchemas)

/** Requests one socket may watch at once. */
export const MAX_WATCHED = 100

export interface ClientChannel {
  generations: Generations
  positions: PositionFeed
  /** Socket submissions per second, per user (per address for anonymous use); with CLUSTER=on one Redis round trip. */
  submits: RateLimiter
  /** True while the request's job runs (or settles) on this process: a drain keeps its watchers until it ends. */
  runningHere(request: string): boolean
}

export class ClientSession implements SocketSession {
  /** Requests followed, with their subscription (null while it is being made). */
  private readonly watched = new Map<string, Subscription | null>()
  private readonly caller: Caller
  /** Capabilities this socket was given or sent (anonymous requests), newest last, so that later frames need not repeat them. */
  private readonly capabilities = new Map<string, string>()

  constructor(readonly connection: Connection, readonly principal: Principal, readonly address: string, private readonly channel: ClientChannel) {
    this.caller = { principal, address }
    connection.busy = () => {
      for (const request of this.watched.keys()) if (channel.runningHere(request)) return true
      return false
    }
  }

  onMessage(data: unknown, isBinary: boolean): void {
    const message = this.connection.decode(decode, data, isBinary)
    if (!message) return
    void this.handle(message).catch((error) => {
      if (error instanceof BrokerError) this.connection.error(error.code, error.message, message.id, { bad: false })
      else this.connection.error('internal', undefined, message.id, { bad: false })
    })
  }

  private async handle(message: ClientMessage): Promise<void> {
    const { generations } = this.channel
    switch (message.type) {
      case 'submit': {
        if (this.watched.size >= MAX_WATCHED) throw new BrokerError('too_many_active', `A socket may watch at most ${MAX_WATCHED} requests`)
        const bucket = this.principal.anonymous ? `ip:${this.address}` : `user:${this.principal.userId}`
        // In memory the answer is there at once (no extra turn); in Redis it is one EVALSHA.
        const taken = this.channel.submits.take(bucket)
        if (!(isPending(taken) ? await taken : taken).ok) throw new BrokerError('too_many_requests', 'Too many submissions per second')
        const { id: _id, type: _type, idempotency_key: key, ...body } = message
        const accepted = await generations.submit(this.caller, body, { idempotencyKey: key })
        const capability = accepted.capability === undefined ? {} : { capability: accepted.capability }
        if (accepted.capability !== undefined) this.remember(accepted.id, accepted.capability)
        if (accepted.replayed) {
          // The request exists already: tell where it stands, as an attach would.
          this.connection.send({ type: 'accepted', id: message.id, request: accepted.id, replayed: true, ...capability })
          await this.attach(accepted.id, message.id)
          return
        }
        this.connection.send({ type: 'accepted', id: message.id, request: accepted.id, ...capability })
        this.connection.send({ type: 'queued', request: accepted.id, position: accepted.position, is_possible: accepted.isPossible, eta_seconds: accepted.eta })
        // From its first event: whatever happened since the accept is in the history.
        this.watched.set(accepted.id, null)
        this.follow(accepted.id, await generations.watch(this.callerFor(accepted.id), accepted.id, (event) => this.deliver(accepted.id, event.frame, event.final)))
        return
      }
      case 'attach':
        await this.attach(message.request, message.id, message.after, message.capability)
        return
      case 'cancel': {
        const view = await generations.cancel(this.callerFor(message.request, message.capability), message.request)
        this.connection.send({ type: 'cancel_accepted', request: message.request, state: view.state, id: message.id })
        return
      }
      default: {
        const never: never = message
        throw new Error(`unhandled client message ${JSON.stringify(never)}`)
      }
    }
  }

  /** Sends where the request stands (`attached`), then follows it unless it has ended or is followed already. */
  private async attach(request: string, id: string | number, after?: ChunkPlace, capability?: string): Promise<void> {
    const already = this.watched.has(request)
    if (!already && this.watched.size >= MAX_WATCHED) throw new BrokerError('too_many_active', `A socket may watch at most ${MAX_WATCHED} requests`)
    if (!already) this.watched.set(request, null)
    const subscription = await this.channel.generations.attach(this.callerFor(request, capability), request, {
      view: ({ id: _request, ...rest }, resumed) => this.connection.send({ type: 'attached', ...rest, request, id, ...(resumed === undefined ? {} : { resumed }) }),
      event: (event) => { if (!already) this.deliver(request, event.frame, event.final) },
    }, after).catch((error) => {
      if (!already) this.watched.delete(request)
      throw error
    })
    if (capability !== undefined) this.remember(request, capability)
    if (already) subscription?.close()
    else if (subscription) this.follow(request, subscription)
    else this.watched.delete(request)
  }

  private follow(request: string, subscription: Subscription): void {
    if (!this.watched.has(request) || this.connection.closed) {
      subscription.close() // ended (or the socket closed) while the subscription was being made
      return
    }
    this.watched.set(request, subscription)
    this.channel.positions.watch(request, this.callerFor(request))
  }

  /** The caller for one request: with the capability sent now, or the one this socket holds for it. */
  private callerFor(request: string, capability = this.capabilities.get(request)): Caller {
    return capability === undefined ? this.caller : { ...this.caller, capability }
  }

  private remember(request: string, capability: string): void {
    this.capabilities.delete(request)
    this.capabilities.set(request, capability)
    // Bounded: the oldest are forgotten first (a frame may still send one again).
    if (this.capabilities.size > 4 * MAX_WATCHED) this.capabilities.delete(this.capabilities.keys().next().value!)
  }

  private deliver(request: string, frame: string, final: boolean): void {
    this.connection.sendText(frame)
    if (final) this.unwatch(request)
  }

  private unwatch(request: string): void {
    this.watched.get(request)?.close()
    this.watched.delete(request)
  }

  onClose(): void {
    for (const request of [...this.watched.keys()]) this.unwatch(request)
  }
}
