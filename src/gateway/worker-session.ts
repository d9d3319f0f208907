/**
 * One connected worker: its announced capabilities and the jobs it runs. Frames come in
 * through `onMessage`, decoded once at the edge and dispatched by one switch; the
 * pipeline does the rest (relay, settlement, re-dispatch).
 */
import type { Principal } from '../accounts/accounts.js'
import { createDecoder } from '../protocol/envelope.js'
import { workerSchemas, type WorkerMessage } from '../protocol/worker.js'
import type { ClaimedJob } from '../queue/job-queue.js'
import type { Capabilities } from '../queue/classes.js'
import type { Connection } from './connection.js'

const decode = createDecoder<WorkerMessage>(workerSchemas)

export interface RunningJob {
  claimed: ClaimedJob
  request: string
  attempt: number
  model: string
  /** Next expected chunk sequence number. */
  seq: number
  /** Relayed text, in order; joined once at the end. */
  parts: string[]
  chars: number
  dispatchedAt: number
  firstChunkAt: number | null
  /** Unsubscribes from the request's control events. */
  unsubscribe: () => void
}

export interface WorkerInfo extends Capabilities {
  /** Database id of the worker row. */
  id: number
  name: string
  modelList: string[]
  threads: number
  /** Owner first, then the named priority users: served before everyone else. */
  preferred: number[]
}

/** What the session needs from the pipeline. */
export interface WorkerHost {
  announce(session: WorkerSession, message: Extract<WorkerMessage, { type: 'announce' }>): Promise<void>
  chunk(session: WorkerSession, message: Extract<WorkerMessage, { type: 'chunk' }>): void
  done(session: WorkerSession, message: Extract<WorkerMessage, { type: 'done' }>): void
  fail(session: WorkerSession, message: Extract<WorkerMessage, { type: 'fail' }>): void
  closed(session: WorkerSession): void
}

export class WorkerSession {
  info: WorkerInfo | null = null
  readonly jobs = new Map<string, RunningJob>()
  /** Slots promised to a claim in flight, so that two claims never overfill the worker. */
  reserved = 0
  /** Monotonic ms when this session started (uptime is measured from pongs after it). */
  readonly connectedAt = performance.now()
  private announcing = false

  constructor(readonly connection: Connection, readonly principal: Principal, private readonly host: WorkerHost) {}

  get free(): number {
    return this.info ? this.info.threads - this.jobs.size - this.reserved : 0
  }

  onMessage(data: unknown, isBinary: boolean): void {
    const message = this.connection.decode(decode, data, isBinary)
    if (!message) return
    if (message.type !== 'announce' && !this.info) {
      this.connection.error('not_ready')
      return
    }
    switch (message.type) {
      case 'announce':
        if (this.info || this.announcing) {
          this.connection.error('bad_request', 'Already announced; reconnect to change what you serve', message.id)
          return
        }
        this.announcing = true
        this.host.announce(this, message)
          .catch(() => this.connection.error('unavailable', 'Could not register the worker; try again', message.id, { bad: false }))
          .finally(() => { this.announcing = false })
        return
      case 'chunk':
        this.host.chunk(this, message)
        return
      case 'done':
        this.host.done(this, message)
        return
      case 'fail':
        this.host.fail(this, message)
        return
      default: {
        const never: never = message
        throw new Error(`unhandled worker message ${JSON.stringify(never)}`)
      }
    }
  }

  onClose(): void {
    this.host.closed(this)
  }
}
