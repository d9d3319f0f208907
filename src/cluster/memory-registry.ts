/**
 * The worker registry for one process, or for several registries in one process sharing a
 * `MemoryRegistrySpace` (what the contract test uses to stand in for several brokers, and a
 * single-process broker never needs). It keeps the Redis registry's rules: an entry belongs
 * to a session, a leave only removes its own session's entry, and entries of a process that
 * is no longer alive are dropped when read.
 */
import { randomUUID } from 'node:crypto'
import type { OnlineWorker, WorkerRegistry } from './ports.js'

/** What several memory registries share: the table of entries and the live processes. */
export interface MemoryRegistrySpace {
  /** Worker name -> entry, as the Redis hash holds it. */
  readonly workers: Map<string, OnlineWorker>
  /** Ids of processes whose registry is open (their liveness key, in Redis terms). */
  readonly alive: Set<string>
}

export interface MemoryRegistryOptions {
  /** Shared with other registries in this process; a private one when omitted. */
  space?: MemoryRegistrySpace
  /** This process's id; a random UUID when omitted. */
  processId?: string
}

export function createMemoryRegistrySpace(): MemoryRegistrySpace {
  return { workers: new Map(), alive: new Set() }
}

export function createMemoryRegistry(options: MemoryRegistryOptions = {}): WorkerRegistry {
  const space = options.space ?? createMemoryRegistrySpace()
  const processId = options.processId ?? randomUUID()
  space.alive.add(processId)

  return {
    processId,
    async join(worker) {
      // A copy: the caller's object may change after it joined.
      space.workers.set(worker.name, { ...worker, models: [...worker.models], process: processId })
    },
    async leave(name, session) {
      if (space.workers.get(name)?.session === session) space.workers.delete(name)
    },
    async online() {
      const list: OnlineWorker[] = []
      for (const [name, worker] of space.workers) {
        if (space.alive.has(worker.process)) list.push({ ...worker, models: [...worker.models] })
        else space.workers.delete(name)
      }
      return list
    },
    async close() {
      // Like the Redis registry: the process is gone, its workers' entries fall with it.
      space.alive.delete(processId)
    },
  }
}
