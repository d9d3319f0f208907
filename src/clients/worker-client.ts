/**
 * The reference worker's protocol side: holds one socket to the broker, announces what it
 * serves, runs pushed jobs on a backend and streams their text back chunk by chunk.
 * Reconnects with back-off when the close code says so.
 *
 * The backend is watched: after a failed job (and every `healthMs`) it is probed, and while
 * it is down the worker leaves the horde (closes its socket, so no job is offered to it and
 * no uptime is claimed for a worker that cannot work), probing every `probeMs`; once the
 * backend answers again it reconnects. `drain()` is maintenance then stop: running jobs
 * finish, no new ones come.
 */
import { EventEmitter } from 'node:events'
import WebSocket from 'ws'
import { shouldReconnect } from '../protocol/envelope.js'
import type { Backend } from './backends/backend.js'
import type { ProbeResult } from './backends/probe.js'

export interface WorkerClientOptions {
  /** Broker base URL (http(s):// or ws(s)://). */
  url: string
  key: string
  name: string
  models: string[]
  maxLength: number
  maxContextLength: number
  threads?: number
  priorityUsernames?: string[]
  backend: Backend
  /** Reconnect after a close that allows it (default true). */
  reconnect?: boolean
  /** Probe interval while the backend is down (default 5 s). */
  probeMs?: number
  /** Probe interval while connected (default 30 s). */
  healthMs?: number
}

export interface WorkerClientEvents {
  ready: [{ worker_id: number; name: string; unknown_priority_users: string[] }]
  /** A job failed on the backend; `reason` is what the broker was told. */
  failed: [{ job: string; reason: string }]
  /** The broker offers no jobs for `seconds` (too many failures in a row). */
  paused: [{ seconds: number; failures: number; reason: string }]
  /** A moderator paused or unpaused the worker, or changed its trust. */
  moderated: [{ paused: boolean; trusted: boolean; reason: string | null }]
  /** The backend went down (the worker leaves the horde) or came back (it rejoins). */
  backend: [ProbeResult]
  /** A job was pushed: its id (new for each attempt) and the job as the broker sent it. */
  job: [string, { prompt: string; model: string; max_length: number }]
  settled: [{ job: string; outcome: string; tokens: number; kudos: number }]
  /** `willReconnect`: a new connection follows after a back-off. */
  closed: [{ code: number; reason: string; willReconnect: boolean }]
  /** A job ended here; the count still running. */
  idle: [number]
  error: [Error]
}

export function socketUrl(base: string, path: string): string {
  return base.replace(/^http/, 'ws').replace(/\/+$/, '') + path
}

export class WorkerClient extends EventEmitter<WorkerClientEvents> {
  private ws: WebSocket | undefined
  private stopped = false
  private attempt = 0
  /** The broker refused the upgrade for a reason a retry cannot fix (a bad key or scope). */
  private refused = false
  private readonly running = new Map<string, AbortController>()
  /** The backend is down: the socket is closed on purpose and reopened when a probe says up. */
  private backendDown = false
  private probing = false
  private healthTimer: NodeJS.Timeout | undefined
  private maintenanceOn = false

  constructor(readonly options: WorkerClientOptions) {
    super()
  }

  /** Connects and resolves once the broker has accepted the announcement. */
  start(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      this.once('ready', () => resolve())
      this.once('closed', ({ code, reason }) => reject(new Error(`closed before ready: ${code} ${reason}`)))
    })
    this.connect()
    return ready
  }

  private connect(): void {
    const ws = new WebSocket(socketUrl(this.options.url, '/v1/worker'), { headers: { apikey: this.options.key } })
    this.ws = ws
    ws.on('message', (data) => this.onFrame(JSON.parse(String(data))))
    ws.on('error', (error) => this.emit('error', error))
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0
      // 401/403 are refused before any socket exists, so no 4401/4403 close code says
      // "do not retry"; the status says it instead. 429 and 5xx are worth retrying.
      if (status >= 400 && status < 500 && status !== 429) this.refused = true
      this.emit('error', new Error(`the broker refused the worker socket: HTTP ${status}`))
      ws.terminate()
    })
    ws.on('close', (code, reason) => {
      for (const controller of this.running.values()) controller.abort()
      this.running.clear()
      clearInterval(this.healthTimer)
      const willReconnect = !this.stopped && !this.refused && (this.backendDown || (this.options.reconnect !== false && shouldReconnect(code)))
      this.emit('closed', { code, reason: String(reason), willReconnect })
      // While the backend is down the probe loop reconnects.
      if (willReconnect && !this.backendDown) {
        const delay = Math.min(30_000, 250 * 2 ** this.attempt++) * (0.5 + Math.random() / 2)
        setTimeout(() => { if (!this.stopped) this.connect() }, delay).unref()
      }
    })
  }

  private send(frame: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame))
  }

  private onFrame(frame: any): void {
    switch (frame.type) {
      case 'welcome':
        this.send({
          type: 'announce', id: 'announce', name: this.options.name, models: this.options.models,
          max_length: this.options.maxLength, max_context_length: this.options.maxContextLength,
          threads: this.options.threads ?? 1, priority_usernames: this.options.priorityUsernames ?? [],
        })
        return
      case 'ready':
        this.attempt = 0
        if (this.maintenanceOn) this.send({ type: 'maintenance', on: true })
        clearInterval(this.healthTimer)
        this.healthTimer = setInterval(() => void this.checkBackend(), this.options.healthMs ?? 30_000)
        this.healthTimer.unref()
        this.emit('ready', frame)
        return
      case 'paused':
        this.emit('paused', frame)
        return
      case 'moderation':
        this.emit('moderated', frame)
        return
      case 'job':
        void this.run(frame)
        return
      case 'cancel':
        this.running.get(frame.job)?.abort()
        return
      case 'settled':
        this.emit('settled', frame)
        return
      case 'error':
        this.emit('error', new Error(`${frame.code}: ${frame.message}`))
        return
    }
  }

  private async run(job: { job: string; prompt: string; model: string; max_length: number; max_context_length: number; params: Record<string, unknown> }): Promise<void> {
    const controller = new AbortController()
    this.running.set(job.job, controller)
    this.emit('job', job.job, job)
    let seq = 0
    try {
      for await (const text of this.options.backend.generate(job, controller.signal)) {
        if (controller.signal.aborted) return
        this.send({ type: 'chunk', job: job.job, seq: seq++, text })
      }
      if (!controller.signal.aborted) this.send({ type: 'done', job: job.job, chunks: seq })
    } catch (error) {
      if (!controller.signal.aborted) {
        const reason = (error as Error).message.slice(0, 500)
        // No new job until the probe has looked at the backend: a dead one would fail it too.
        if (!this.maintenanceOn) this.send({ type: 'maintenance', on: true })
        this.send({ type: 'fail', job: job.job, reason })
        this.emit('failed', { job: job.job, reason })
        void this.checkBackend().then((up) => { if (up && !this.maintenanceOn) this.send({ type: 'maintenance', on: false }) })
      }
    } finally {
      this.running.delete(job.job)
      this.emit('idle', this.running.size)
    }
  }

  /** Jobs running now. */
  get busy(): number {
    return this.running.size
  }

  /** Probes the backend; a down one makes the worker leave until a probe says it is back. */
  private async checkBackend(): Promise<boolean> {
    if (this.probing || this.backendDown || this.stopped) return !this.backendDown
    this.probing = true
    try {
      const result = await this.options.backend.probe(AbortSignal.timeout(10_000))
      if (result.state === 'up' || this.stopped) return true
      this.backendDown = true
      this.emit('backend', result)
      this.ws?.close(1000, 'backend down')
      void this.waitForBackend()
      return false
    } finally {
      this.probing = false
    }
  }

  private async waitForBackend(): Promise<void> {
    while (!this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, this.options.probeMs ?? 5000))
      if (this.stopped) return
      const result = await this.options.backend.probe(AbortSignal.timeout(10_000))
      if (result.state !== 'up') continue
      this.backendDown = false
      this.emit('backend', result)
      this.attempt = 0
      this.connect()
      return
    }
  }

  /** Maintenance: `true` takes no new jobs (running ones finish); `false` takes jobs again. */
  maintenance(on: boolean): void {
    this.maintenanceOn = on
    this.send({ type: 'maintenance', on })
  }

  /** Finish, then stop: no new jobs; resolves once the running ones have ended and the socket closed. */
  async drain(): Promise<void> {
    this.maintenance(true)
    while (this.running.size > 0) await new Promise((resolve) => this.once('idle', resolve))
    await this.stop()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.healthTimer)
    for (const controller of this.running.values()) controller.abort()
    const ws = this.ws
    if (!ws || ws.readyState === WebSocket.CLOSED) return
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve())
      ws.close(1000, 'worker stopping')
    })
  }
}
