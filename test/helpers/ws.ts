/** A raw WebSocket peer for tests: records every frame, waits for the ones asked for. */
import WebSocket from 'ws'

export interface Peer {
  ws: WebSocket
  frames: any[]
  send(frame: unknown): void
  sendRaw(data: string | Buffer, binary?: boolean): void
  /** Resolves with the first frame (not yet taken) matching, waiting up to `timeoutMs`. */
  next(match: string | ((frame: any) => boolean), timeoutMs?: number): Promise<any>
  closed: Promise<{ code: number; reason: string }>
  close(): void
}

/**
 * Workers know a job by its own id, never by its request's id. Tests want to say which request
 * a worker got: each broker of this test process tells (while the job runs) which request a job
 * id belongs to, and a worker peer writes it on the frames it receives as `forRequest`, a field
 * of this helper (the broker never sends it). Brokers in other processes cannot be asked.
 */
const jobResolvers = new Set<(job: string) => string | undefined>()
const requestOfJob = new Map<string, string>()

/** Registers a resolver of job ids (one per in-process broker); the result unregisters it. */
export function resolveJobsWith(resolve: (job: string) => string | undefined): () => void {
  jobResolvers.add(resolve)
  return () => jobResolvers.delete(resolve)
}

function noteRequest(frame: any): void {
  if (frame === null || typeof frame !== 'object' || typeof frame.job !== 'string') return
  if (frame.type === 'job') {
    for (const resolve of jobResolvers) {
      const request = resolve(frame.job)
      if (request !== undefined) requestOfJob.set(frame.job, request)
    }
  }
  const request = requestOfJob.get(frame.job)
  if (request !== undefined && (frame.type === 'job' || frame.type === 'cancel' || frame.type === 'settled')) frame.forRequest = request
}

export async function connect(url: string, key?: string, headers: Record<string, string> = {}, options: { autoPong?: boolean } = {}): Promise<Peer> {
  const ws = new WebSocket(url, { headers: key ? { apikey: key, ...headers } : headers, autoPong: options.autoPong ?? true })
  const frames: any[] = []
  const taken = new Set<any>()
  const waiters: Array<() => void> = []
  ws.on('message', (data, isBinary) => {
    const frame = isBinary ? data : JSON.parse(String(data))
    if (!isBinary) noteRequest(frame)
    frames.push(frame)
    for (const wake of waiters.splice(0)) wake()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => {
    resolve({ code, reason: String(reason) })
    for (const wake of waiters.splice(0)) wake()
  }))
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })))
    ws.once('error', reject)
  })
  const peer: Peer = {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(JSON.stringify(frame)),
    sendRaw: (data, binary = false) => ws.send(data, { binary }),
    async next(match, timeoutMs = 5000) {
      const test = typeof match === 'string' ? (f: any) => f.type === match : match
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = frames.find((f) => !taken.has(f) && test(f))
        if (found) {
          taken.add(found)
          return found
        }
        const left = deadline - Date.now()
        if (left <= 0 || ws.readyState === WebSocket.CLOSED) {
          throw new Error(`no frame matching ${typeof match === 'string' ? match : 'predicate'}; got ${JSON.stringify(frames.slice(-5))}`)
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left)
          waiters.push(() => { clearTimeout(timer); resolve() })
        })
      }
    },
    close: () => ws.close(),
  }
  return peer
}
