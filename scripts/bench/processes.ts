/**
 * Child processes of the bench: a broker (createBroker, listening on 127.0.0.1:0) or a raw
 * ws server, each in its own process so that the load generator (the bench process) never
 * shares an event loop with what it measures, and so that a child's RSS is its own.
 * Children talk over the IPC channel: `ready` first, then numbered calls and replies.
 */
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { rssKb, sleep, withTimeout } from './common.js'

const here = path.dirname(fileURLToPath(import.meta.url))

/** A message from a child. */
export type ChildMessage = { type: 'ready'; url: string } | { type: 'reply'; id: number; result?: unknown; error?: string }

export interface Child {
  readonly pid: number
  /** http://127.0.0.1:PORT */
  readonly url: string
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string
  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>
  /** RSS after a full garbage collection in the child, KiB. */
  settledRss(): Promise<number>
  stop(): Promise<void>
}

const live = new Set<ChildProcess>()

/** Kills every child still running (the bench's watchdog and exit path). */
export function killChildren(): void {
  for (const child of live) child.kill('SIGKILL')
}

async function start(file: string, env: Record<string, string>, nodeArgs: string[]): Promise<Child> {
  const child = fork(path.join(here, file), [], {
    execArgv: ['--import', 'tsx', '--expose-gc', ...nodeArgs],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  let nextId = 0
  const ready = new Promise<string>((resolve, reject) => {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') resolve(message.url)
      else if (message.type === 'reply') {
        const waiter = pending.get(message.id)
        pending.delete(message.id)
        if (message.error) waiter?.reject(new Error(message.error))
        else waiter?.resolve(message.result)
      }
    })
    child.once('exit', (code, signal) => {
      const error = new Error(`${file} exited (${code ?? signal})`)
      reject(error)
      for (const waiter of pending.values()) waiter.reject(error)
      pending.clear()
    })
  })
  const url = await withTimeout(ready, 30_000, `${file} to start`)
  const call = <T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> => new Promise<T>((resolve, reject) => {
    const id = ++nextId
    pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
    child.send({ cmd, id, ...args })
  })
  return {
    pid: child.pid!,
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    call,
    async settledRss() {
      await call('gc')
      await sleep(50)
      await call('gc')
      return rssKb(child.pid!)
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.send({ cmd: 'stop', id: 0 })
      await withTimeout(exited, 20_000, `${file} to stop`).catch(() => child.kill('SIGKILL'))
    },
  }
}

/** Broker settings for load: limits meant for abuse are lifted, logs are off. */
export function brokerEnv(options: { redisUrl: string; dataDir: string; prefix: string; heartbeatSeconds?: number }): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: options.dataDir,
    REDIS_URL: options.redisUrl,
    REDIS_PREFIX: options.prefix,
    LOG_LEVEL: 'silent',
    REGISTRATIONS_PER_MINUTE: '100000',
    LOGINS_PER_MINUTE: '100000',
    BAD_KEYS_PER_MINUTE: '100000',
    HTTP_CONNECTIONS_PER_IP: '100000',
    SUBMITS_PER_SECOND: '1000000',
    MAX_ACTIVE_PER_USER: '1000000',
    CONNECTIONS_PER_IP: '10000000',
    UPGRADES_PER_SECOND: '1000000',
    HEARTBEAT_SECONDS: String(options.heartbeatSeconds ?? 15),
    // FULL is the broker's default; BENCH_SQLITE_SYNCHRONOUS=NORMAL shows what the fsyncs cost.
    SQLITE_SYNCHRONOUS: process.env.BENCH_SQLITE_SYNCHRONOUS === 'NORMAL' ? 'NORMAL' : 'FULL',
  }
}

export function startBrokerChild(env: Record<string, string>, nodeArgs: string[] = []): Promise<Child> {
  return start('broker-child.ts', env, nodeArgs)
}

export function startRawChild(options: { heartbeatSeconds?: number } = {}): Promise<Child> {
  return start('raw-ws-child.ts', { RAW_HEARTBEAT_SECONDS: String(options.heartbeatSeconds ?? 15) }, [])
}
