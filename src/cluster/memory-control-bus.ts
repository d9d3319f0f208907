/**
 * The control bus for one process: a message goes to every handler of its type, here,
 * before `publish` resolves. A handler that throws is logged and the others still run,
 * since a failing cancel handler must not keep a revoked key's sockets open.
 */
import type { ControlBus, ControlHandler, ControlMessage, ControlType } from './ports.js'

export interface MemoryControlBusOptions {
  /** Where a handler's exception goes. Default console.error. */
  log?: (error: unknown) => void
}

type AnyHandler = (message: ControlMessage) => void

/** Handlers by message type; shared with the Redis bus, which delivers through it. */
export interface HandlerTable {
  /** Adds a handler; returns the function that removes it (idempotent). */
  on<T extends ControlType>(type: T, handler: ControlHandler<T>): () => void
  /** Runs every handler of the message's type; one that throws is logged and skipped. */
  deliver(message: ControlMessage): void
  /** Removes every handler. */
  clear(): void
}

export function createHandlerTable(log: (error: unknown) => void): HandlerTable {
  const handlers = new Map<ControlType, Set<AnyHandler>>()
  return {
    on(type, handler) {
      let set = handlers.get(type)
      if (!set) handlers.set(type, (set = new Set()))
      // Each registration gets its own wrapper, so the same function added twice is removed once per call.
      const entry: AnyHandler = (message) => handler(message as never)
      set.add(entry)
      return () => {
        set.delete(entry)
        if (set.size === 0 && handlers.get(type) === set) handlers.delete(type)
      }
    },
    deliver(message) {
      const set = handlers.get(message.type)
      if (!set) return
      // A snapshot: a handler that adds or removes handlers changes the next delivery, not this one.
      for (const handler of [...set]) {
        try {
          handler(message)
        } catch (error) {
          log(error)
        }
      }
    },
    clear() {
      handlers.clear()
    },
  }
}

export function createMemoryControlBus(options: MemoryControlBusOptions = {}): ControlBus {
  const table = createHandlerTable(options.log ?? ((error: unknown) => console.error(error)))
  let closed = false
  return {
    async publish(message) {
      if (!closed) table.deliver(message)
    },
    on: (type, handler) => table.on(type, handler),
    async close() {
      closed = true
      table.clear()
    },
  }
}
