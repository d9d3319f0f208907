/**
 * The broker as a real child process (`node --import tsx src/main.ts`), for fault tests
 * that kill it: a fixed port and data directory, so that a restarted broker is the same
 * broker to its workers and clients. Its stderr and stdout go to a log file in the data
 * directory, read back when it fails to come up.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../src/redis/redis-server.js'
import { DB_FILE } from '../../src/db/open.js'
import { databaseEnv, defer, sleep, tempDir, type TestLike } from './harness.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface BrokerProcess {
  /** http://127.0.0.1:PORT, the same across restarts. */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /**
   * Where the broker stores, the same across restarts: its SQLite file, or with
   * `HB_TEST_DATABASE=postgres` (or DATABASE_URL in `env`) the PostgreSQL URL. For the
   * audit and for reading settlements (test/helpers/database.ts).
   */
  readonly database: string
  readonly pid: number | undefined
  /** SIGKILL: no draining, no goodbye to sockets; resolves once the process has exited. */
  kill(): Promise<void>
  /** SIGTERM: the broker drains and exits. */
  stop(): Promise<void>
  /** Sends a signal and returns at once; `exited` tells how the process ended. */
  send(signal: NodeJS.Signals): void
  /** Resolves with the exit code (or the signal's name) once the current process has exited. */
  exited(): Promise<number | string>
  /** Starts it again on the same port and data directory and waits for /health. */
  restart(): Promise<void>
  /** The process's output so far (for failure messages). */
  log(): string
}

export interface BrokerProcessOptions {
  redisUrl: string
  /** Extra environment (limits, lock and reconcile periods...). */
  env?: Record<string, string>
  dataDir?: string
  /** How long to wait for /health after each start (default 90 s: a loaded machine starts tsx slowly). */
  startTimeoutMs?: number
}

/** The environment every fault test wants: short locks and reconcile periods, limits out of the way. */
export const FAULT_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  REGISTRATIONS_PER_MINUTE: '100000',
  LOGINS_PER_MINUTE: '100000',
  BAD_KEYS_PER_MINUTE: '100000',
  HTTP_CONNECTIONS_PER_IP: '100000',
  JOB_LOCK_SECONDS: '1.5',
  RECONCILE_SECONDS: '1',
  HEARTBEAT_SECONDS: '2',
  MAX_ACTIVE_PER_USER: '1000',
  SUBMITS_PER_SECOND: '10000',
  CONNECTIONS_PER_IP: '10000',
  JOB_MAX_ATTEMPTS: '20',
}

/** True when GET /health answers 200 (database and Redis up). */
export async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })
    await response.text()
    return response.status === 200
  } catch {
    return false
  }
}

export async function startBrokerProcess(t: TestLike, options: BrokerProcessOptions): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? tempDir('horde-proc-')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const logFile = path.join(dataDir, 'broker.log')
  const database = await databaseEnv(t, dataDir, options.env)
  const env = {
    ...process.env,
    ...FAULT_ENV,
    ...database,
    ...options.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    REDIS_URL: options.redisUrl,
  }
  let child: ChildProcess | undefined

  async function launch(): Promise<void> {
    fs.mkdirSync(dataDir, { recursive: true })
    const out = fs.openSync(logFile, 'a')
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', out, out] })
    fs.closeSync(out)
    const current = child
    let exit: string | undefined
    current.once('exit', (code, signal) => { exit = `exited with ${signal ?? code}` })
    const deadline = Date.now() + (options.startTimeoutMs ?? 90_000)
    while (Date.now() < deadline) {
      if (exit) throw new Error(`broker ${exit} before it was healthy:\n${readLog()}`)
      if (await healthy(url)) return
      await sleep(100)
    }
    current.kill('SIGKILL')
    throw new Error(`broker not healthy on ${url} after ${options.startTimeoutMs ?? 90_000} ms:\n${readLog()}`)
  }

  function readLog(): string {
    try {
      return fs.readFileSync(logFile, 'utf8').slice(-4000)
    } catch {
      return ''
    }
  }

  async function signal(name: NodeJS.Signals): Promise<void> {
    const current = child
    if (!current || current.exitCode !== null || current.signalCode !== null) return
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()))
    current.kill(name)
    await exited
  }

  await launch()
  defer(t, () => signal('SIGKILL'))
  return {
    url,
    port,
    dataDir,
    database: (env as NodeJS.ProcessEnv).DATABASE_URL ?? path.join(dataDir, DB_FILE),
    get pid() { return child?.pid },
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
    send: (name) => { child?.kill(name) },
    exited() {
      const current = child
      if (!current) return Promise.resolve('not started')
      if (current.exitCode !== null || current.signalCode !== null) return Promise.resolve(current.signalCode ?? current.exitCode!)
      return new Promise((resolve) => current.once('exit', (code, name) => resolve(name ?? code!)))
    },
    restart: launch,
    log: readLog,
  }
}
