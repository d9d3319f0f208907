/**
 * One client socket: submits requests, attaches to existing ones, cancels, and receives
 * each watched request's events as the pipeline publishes them (already serialized).
 */
import type { Principal } from '../accounts/accounts.js'
import { BrokerError } from '../errors.js'
import { clientSchemas, type ClientMessage } from '../protocol/client.js'
import { createDecoder, type RequestId } from '../protocol/envelope.js'
import type { Connection } from './connection.js'
import type { RequestEvent } from './fanout.js'
import type { Pipeline } from './pipeline.js'

const decode = createDecoder<ClientMessage>(clientSchemas)

/** Requests one socket may watch at once. */
export const MAX_WATCHED = 100

export class ClientSession {
  private readonly watched = new Map<string, () => void>()

  constructor(readonly connection: Connection, readonly principal: Principal, readonly address: string, private readonly pipeline: Pipeline) {}

  onMessage(data: unknown, isBinary: boolean): void {
    const message = this.connection.decode(decode, data, isBinary)
    if (!message) return
    void this.handle(message).catch((error) => {
      if (error instanceof BrokerError) this.connection.error(error.code, error.message, message.id, { bad: false })
      else this.connection.error('internal', undefined, message.id, { bad: false })
    })
  }

  private async handle(message: ClientMessage): Promise<void> {
    switch (message.type) {
      case 'submit': {
        if (this.watched.size >= MAX_WATCHED) throw new BrokerError('too_many_active', `A socket may watch at most ${MAX_WATCHED} requests`)
        if (!this.pipeline.submitAllowed(this.principal, this.address)) {
          throw new BrokerError('too_many_requests', 'Too many submissions per second')
        }
        const { id: _id, type: _type, idempotency_key: key, ...body } = message
        const accepted = await this.pipeline.submit(this.principal, body, this.address, (request) => this.watch(request), key)
        if (accepted.replayed) {
          // The request exists already: tell where it stands, as an attach would.
          const { id: request, ...rest } = await this.pipeline.view(this.principal, accepted.id)
          this.connection.send({ type: 'accepted', id: message.id, request, replayed: true })
          this.connection.send({ type: 'attached', ...rest, request, id: message.id })
          return
        }
        this.connection.send({ type: 'accepted', id: message.id, request: accepted.id })
        this.connection.send({ type: 'queued', request: accepted.id, position: accepted.position, is_possible: accepted.isPossible, eta_seconds: accepted.eta })
        return
      }
      case 'attach': {
        const view = await this.pipeline.view(this.principal, message.request)
        if (!this.watched.has(message.request) && view.state !== 'done' && view.state !== 'failed' && view.state !== 'cancelled') {
          if (this.watched.size >= MAX_WATCHED) throw new BrokerError('too_many_active', `A socket may watch at most ${MAX_WATCHED} requests`)
          this.watch(message.request)
        }
        const { id: request, ...rest } = view
        this.connection.send({ type: 'attached', ...rest, request, id: message.id })
        return
      }
      case 'cancel': {
        const view = await this.pipeline.cancel(this.principal, message.request)
        this.reply(message.id, { type: 'cancel_accepted', request: message.request, state: view.state })
        return
      }
      default: {
        const never: never = message
        throw new Error(`unhandled client message ${JSON.stringify(never)}`)
      }
    }
  }

  private reply(id: RequestId, body: Record<string, unknown>): void {
    this.connection.send({ ...body, id })
  }

  private watch(request: string): void {
    if (this.watched.has(request)) return
    const unsubscribe = this.pipeline.fanout.subscribe(request, (event: RequestEvent) => {
      if (event.kind !== 'client') return
      this.connection.sendText(event.frame)
      if (event.final) this.unwatch(request)
    })
    this.watched.set(request, unsubscribe)
    this.pipeline.watchPosition(request, this.principal)
  }

  private unwatch(request: string): void {
    this.watched.get(request)?.()
    this.watched.delete(request)
  }

  onClose(): void {
    for (const request of [...this.watched.keys()]) this.unwatch(request)
  }
}
