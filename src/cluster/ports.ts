/**
 * The cluster ports: what crosses between broker processes. The core talks only to these;
 * memory implementations serve one process, Redis ones (the scale-out work) serve several,
 * and every implementation passes the same contract test (test/cluster-contract.test.ts).
 *
 * - `Fanout`: a request's events to every watcher, wherever its worker is, with positions
 *   and a bounded history so that a watcher can resume after a position with no gap and no
 *   duplicate.
 * - `ControlBus`: commands to whichever process holds the thing they are about (cancel a
 *   job, a revoked key, a balance change, a worker replaced).
 * - `WorkerRegistry`: the workers connected to any live process, and which process holds them.
 */
import type { BalanceChange } from '../economy/posting-rules.js'

/** Where an event sits in its request's stream: strictly increasing per request, from 1. */
export type Position = number

/** One event of a request, as published. `frame` is the JSON text clients receive, serialized once. */
export interface RequestEvent {
  type: 'queued' | 'started' | 'chunk' | 'restarted' | 'done' | 'failed' | 'cancelled'
  frame: string
  /** The request has ended: no event follows. */
  final: boolean
  /** Chunks only: the attempt and sequence number the frame carries. */
  attempt?: number
  seq?: number
}

export interface PositionedEvent extends RequestEvent {
  /** Its place in the request's stream. */
  position: Position
}

export type EventListener = (event: PositionedEvent) => void

export interface Subscription {
  /**
   * False when some events after `since` had already left the history (trimmed, or the
   * stream forgotten): the watcher has a gap it cannot fill and should say so to its client.
   * True when nothing was missed, and always true without `since`.
   */
  readonly recovered: boolean
  /** Stops delivery; idempotent. */
  close(): void
}

export interface Fanout {
  /** Appends an event to the request's stream and delivers it to live subscribers. */
  publish(request: string, event: RequestEvent): Promise<Position>
  /**
   * Resolves once the subscription is live. With `since`, events after that position that
   * are still in the history are delivered first, in order, then live ones, with none twice.
   */
  subscribe(request: string, listener: EventListener, since?: Position): Promise<Subscription>
  /** Events after `since` still kept, in order. */
  history(request: string, since?: Position): Promise<PositionedEvent[]>
  /** Subscribers of a request in this process (position pushes and tests). */
  listeners(request: string): number
  close(): Promise<void>
}

/** Commands between processes. Each is delivered to every process, this one included. */
export type ControlMessage =
  /** Stop the job of this request, on whichever process's worker holds it. */
  | { type: 'cancel'; request: string }
  /** An API key was revoked: close what it opened. `origin`: the process it was revoked on. */
  | { type: 'key_revoked'; keyId: number; origin?: string }
  /**
   * A user's balance changed (priorities move, bots hear of it). `change`: the whole posting,
   * for bot events; `origin`: the process whose ledger wrote it.
   */
  | { type: 'balance_changed'; userId: number; balance: number; change?: BalanceChange; origin?: string }
  /** A newer session took this worker name: the older one, wherever it is, is closed. */
  | { type: 'worker_replaced'; name: string; session: string }

export type ControlType = ControlMessage['type']
export type ControlHandler<T extends ControlType> = (message: Extract<ControlMessage, { type: T }>) => void

export interface ControlBus {
  /**
   * Sends to every process. This process's handlers have run by the time it resolves (a
   * cancel for a job held here takes effect at once); other processes hear it shortly after.
   */
  publish(message: ControlMessage): Promise<void>
  /** Returns the function that removes the handler. */
  on<T extends ControlType>(type: T, handler: ControlHandler<T>): () => void
  close(): Promise<void>
}

/** A connected worker as every process sees it. */
export interface OnlineWorker {
  /** Unique across the horde: a second connection under the same name replaces the first. */
  name: string
  /** The username of the account that runs it. */
  owner: string
  /** Models it serves. */
  models: string[]
  /** Jobs it runs at once. */
  threads: number
  /** Most tokens it generates for one job. */
  maxLength: number
  /** Longest prompt context it accepts, in tokens. */
  maxContextLength: number
  /** The broker process holding its socket. */
  process: string
  /** The session holding the name (a reconnect gets a new one). */
  session: string
  /** When this session joined, ms since the epoch (the live uptime); absent in entries of older brokers. */
  since?: number
  /** A moderator marked it trusted. */
  trusted?: boolean
  /** A moderator paused it: it takes no job. */
  paused?: boolean
}

export interface WorkerRegistry {
  /** This process's id in the registry. */
  readonly processId: string
  join(worker: Omit<OnlineWorker, 'process'>): Promise<void>
  /** Removes the entry only if it still belongs to `session` (a newer session keeps its own). */
  leave(name: string, session: string): Promise<void>
  /** Workers of live processes (entries of dead processes are dropped). */
  online(): Promise<OnlineWorker[]>
  close(): Promise<void>
}
