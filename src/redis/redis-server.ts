/**
 * A private `redis-server` child process: what the broker starts when no Redis is
 * configured or running, and what every test starts for itself (so that a test can
 * kill, restart or flush its own Redis).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

export const REDIS_INSTALL_HINT =
  'Install redis-server (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL to a running Redis.'

export interface RedisServer {
  readonly url: string
  readonly port: number
  readonly dir: string
  readonly pid: number | undefined
  /** Asks the server to shut down (saving its append-only file) and waits for it to exit. */
  stop(): Promise<void>
  /** SIGKILL: no goodbye, for fault tests. */
  kill(): Promise<void>
  /** Starts it again on the same port and directory (after stop or kill). */
  restart(): Promise<void>
}

export interface RedisServerOptions {
  /** Folder for the append-only file and the log. */
  dir: string
  /** Port to listen on; a free one when omitted. */
  port?: number
  /** Append-only persistence (default true). */
  appendOnly?: boolean
}

export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' })
  return probe.status === 0
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** True when something answers a Redis PING on host:port within the timeout. */
export async function redisAnswers(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  if (!redisServerAvailable()) throw new Error(`redis-server is not on PATH. ${REDIS_INSTALL_HINT}`)
  fs.mkdirSync(options.dir, { recursive: true })
  const port = options.port ?? (await freePort())
  let child: ChildProcess | undefined

  async function launch(): Promise<void> {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', options.dir,
      '--appendonly', options.appendOnly === false ? 'no' : 'yes', '--appendfsync', 'everysec',
      '--save', '', '--daemonize', 'no', '--logfile', path.join(options.dir, 'redis.log'),
    ]
    child = spawn('redis-server', args, { stdio: 'ignore' })
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}; see ${path.join(options.dir, 'redis.log')}`))))
    exited.catch(() => {})
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (await Promise.race([redisAnswers('127.0.0.1', port, 200), exited])) return
      await new Promise((r) => setTimeout(r, 20))
    }
    child.kill('SIGKILL')
    throw new Error(`redis-server did not answer on port ${port} within 10 s`)
  }

  async function waitExit(signal: NodeJS.Signals): Promise<void> {
    const current = child
    if (!current || current.exitCode !== null || current.signalCode !== null) return
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()))
    current.kill(signal)
    await exited
  }

  await launch()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir: options.dir,
    get pid() { return child?.pid },
    stop: () => waitExit('SIGTERM'),
    kill: () => waitExit('SIGKILL'),
    restart: launch,
  }
}
