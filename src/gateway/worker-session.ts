/**
 * The worker channel's adapter: one connected worker socket as a `WorkerLink` of the core.
 * Frames come in through `onMessage`, decoded once at the edge and dispatched by one
 * switch into the core's worker API; what the core pushes (ready, jobs, cancels,
 * settlements, replacement) goes out as frames. Errors become frames or close codes here,
 * through the error table: a bad announce ends the session when the table gives the code
 * a close code, a bad chunk, done or fail is answered with an error frame (and counted
 * toward the bad-frame limit), since the session itself is still sound.
 */
import { randomUUID } from 'node:crypto'
import type { Principal } from '../accounts/accounts.js'
import type { JobOffer, ModerationNotice, PausedNotice, Ready, SettledNotice, WorkerLink, WorkerState } from '../core/worker-link.js'
import type { Workforce } from '../core/workforce.js'
import { ERRORS, isBrokerError } from '../errors.js'
import { CloseCode, createDecoder, errorFrame, type RequestId } from '../protocol/envelope.js'
import { workerSchemas, type WorkerMessage } from '../protocol/worker.js'
import type { Connection, SocketSession } from './connection.js'

const decode = createDecoder<WorkerMessage>(workerSchemas)

export class WorkerSession implements WorkerLink, SocketSession {
  readonly id = randomUUID()
  readonly state: WorkerState
  private announcing = false

  constructor(readonly connection: Connection, readonly principal: Principal, private readonly workforce: Workforce) {
    this.state = workforce.connect(this)
    connection.onPong(() => workforce.heartbeat(this.state))
    connection.busy = () => this.state.jobs.size > 0 || this.state.reserved > 0
  }

  get closed(): boolean {
    return this.connection.closed
  }

  // --- the link: what the core pushes -------------------------------------------------------

  ready(ready: Ready): void {
    this.connection.send({ type: 'ready', ...ready })
  }

  offer(job: JobOffer): void {
    this.connection.send({ type: 'job', ...job })
  }

  stop(job: string): void {
    this.connection.send({ type: 'cancel', job })
  }

  settled(notice: SettledNotice): void {
    this.connection.send({ type: 'settled', ...notice })
  }

  paused(notice: PausedNotice): void {
    this.connection.send({ type: 'paused', ...notice })
  }

  moderated(notice: ModerationNotice): void {
    this.connection.send({ type: 'moderation', ...notice })
  }

  suspended(): void {
    this.connection.send(errorFrame('user_suspended'))
    this.connection.close(CloseCode.Forbidden, 'user_suspended')
  }

  replaced(): void {
    this.connection.close(CloseCode.Replaced, 'replaced by a newer session with the same name')
  }

  // --- the socket: what the worker sends ---------------------------------------------------

  onMessage(data: unknown, isBinary: boolean): void {
    const message = this.connection.decode(decode, data, isBinary)
    if (!message) return
    if (message.type !== 'announce' && !this.state.info) {
      this.connection.error('not_ready')
      return
    }
    try {
      this.handle(message)
    } catch (error) {
      if (!isBrokerError(error)) throw error
      this.connection.error(error.code, error.message)
    }
  }

  private handle(message: WorkerMessage): void {
    switch (message.type) {
      case 'announce':
        if (this.state.info || this.announcing) {
          this.connection.error('bad_request', 'Already announced; reconnect to change what you serve', message.id)
          return
        }
        this.announcing = true
        this.workforce.announce(this.state, message)
          .catch((error) => this.refuse(error, message.id))
          .finally(() => { this.announcing = false })
        return
      case 'chunk':
        this.workforce.chunk(this.state, message.job, message.seq, message.text)
        return
      case 'done':
        this.workforce.done(this.state, message.job, message.chunks)
        return
      case 'fail':
        this.workforce.fail(this.state, message.job, message.reason)
        return
      case 'maintenance':
        this.workforce.maintenance(this.state, message.on)
        return
      default: {
        const never: never = message
        throw new Error(`unhandled worker message ${JSON.stringify(never)}`)
      }
    }
  }

  /** An announce the core refused: the coded error, then the close the table names. */
  private refuse(error: unknown, id: RequestId | undefined): void {
    if (!isBrokerError(error)) {
      this.connection.error('unavailable', 'Could not register the worker; try again', id, { bad: false })
      return
    }
    this.connection.error(error.code, error.message, id, { bad: false })
    const close = ERRORS[error.code].close
    if (close !== null) this.connection.close(close, error.message)
  }

  onClose(): void {
    this.workforce.left(this.state)
  }
}
