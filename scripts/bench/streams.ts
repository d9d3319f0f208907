/**
 * Throughput scenarios over real sockets to a broker child:
 * - relay_tokens_per_s: 100 workers each streaming one job's chunks to the client watching
 *   it, each stream with a window of unacknowledged chunks; chunks received by the clients
 *   per second (baseline: the same frames through a raw ws relay, 100 pairs, same window);
 * - jobs_per_s_100_workers: 100 workers, clients keeping requests outstanding, each job one
 *   chunk and `done`, counted when the client gets `done` (so after settlement in the ledger)
 *   (baseline: BullMQ alone, one no-op manual getNextJob/moveToCompleted loop);
 * - redis_commands_per_job: Redis commands (INFO commandstats, those run inside scripts
 *   included) per completed job over the same window (baseline: the BullMQ loop's);
 * - frames_per_job: WebSocket frames per completed job, both directions, at the workers and
 *   the clients (no baseline: a job needs at least submit, job, chunk, done and the client's chunk and done).
 */
import { randomUUID } from 'node:crypto'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { figure, pool, size, sleep, withTimeout, type BenchContext } from './common.js'
import { BENCH_MODEL, connect, connectClient, connectWorker, registerUser, type Peer } from './peer.js'
import { brokerEnv, startBrokerChild, startRawChild, type Child } from './processes.js'

/** Chunks a stream may have in flight (sent by the worker, not yet at the client). */
const WINDOW = 64
/** The relay bench's prompts: this, then the submission's id. */
const PROMPT = 'Once upon a time #'

export interface Stream {
  up: Peer
  /** Frame the upstream socket sends for chunk `seq`. */
  frame(seq: number): string
  sent: number
  received: number
}

/**
 * Drives every stream as fast as its window allows for `warmupMs + measureMs`, and counts
 * the chunks that reach the downstream sockets during the measured part. `downs` deliver
 * frames keyed by `keyOf` to the stream of that key.
 */
export async function driveStreams(streams: Map<string, Stream>, downs: Peer[], keyOf: (frame: any) => string, warmupMs: number, measureMs: number, progress: (text: string) => void): Promise<number> {
  let running = true
  let measuring = false
  let counted = 0
  const pump = (stream: Stream) => {
    while (running && stream.sent - stream.received < WINDOW) stream.up.ws.send(stream.frame(stream.sent++))
  }
  for (const down of downs) {
    down.buffering = false
    down.onFrame = (frame) => {
      if (frame.type !== 'chunk') return
      const stream = streams.get(keyOf(frame))
      if (!stream) return
      stream.received++
      if (measuring) counted++
      if (stream.sent - stream.received <= WINDOW / 2) pump(stream)
    }
  }
  for (const stream of streams.values()) pump(stream)
  await sleep(warmupMs)
  measuring = true
  const start = performance.now()
  const ticker = setInterval(() => progress(`${Math.round(counted / ((performance.now() - start) / 1000)).toLocaleString('en-US')} chunks/s so far`), 1000)
  await sleep(measureMs)
  measuring = false
  const elapsed = performance.now() - start
  clearInterval(ticker)
  running = false
  // Let what is in flight arrive, so that the sequence numbers line up for `done`.
  const deadline = performance.now() + 5000
  while (performance.now() < deadline && [...streams.values()].some((s) => s.received < s.sent)) await sleep(20)
  return counted / (elapsed / 1000)
}

export async function runStreams(ctx: BenchContext): Promise<void> {
  const streamCount = size(ctx.mode, 100, 100, 10)
  const workerCount = size(ctx.mode, 100, 100, 10)
  const warmupMs = size(ctx.mode, 1000, 300, 300)
  const measureMs = size(ctx.mode, 4000, 1000, 500)
  const jobsMeasureMs = size(ctx.mode, 5000, 1500, 1000)

  ctx.progress('relay throughput: broker')
  const brokerRate = await brokerStreams(ctx, streamCount, warmupMs, measureMs)
  ctx.progress('relay throughput: raw ws relay')
  const rawRate = await rawStreams(streamCount, warmupMs, measureMs, ctx.progress)
  ctx.record('relay_tokens_per_s', figure(brokerRate, 'chunks/s', rawRate))

  ctx.progress('jobs per second: broker')
  const jobs = await brokerJobs(ctx, workerCount, size(ctx.mode, 50, 50, 5), warmupMs, jobsMeasureMs)
  ctx.progress('jobs per second: BullMQ fetch/complete loop')
  const bull = await bullmqJobs(ctx.redisUrl, size(ctx.mode, 30_000, 5000, 1000), jobsMeasureMs)
  ctx.record('jobs_per_s_100_workers', figure(jobs.rate, 'jobs/s', bull.rate))
  ctx.record('redis_commands_per_job', figure(jobs.commandsPerJob, 'commands', bull.commandsPerJob))
  ctx.record('frames_per_job', figure(jobs.framesPerJob, 'frames', null))
}

/**
 * Accounts on the first broker, then workers and clients spread round-robin over `brokers`
 * (processes of one cluster share the accounts through their database).
 */
export async function workersAndClients(ctx: BenchContext, brokers: Child[], prefix: string, workers: number, clients: number): Promise<{ workers: Peer[]; clients: Peer[] }> {
  const [first] = brokers
  const owner = await registerUser(first.url, `${prefix}-owner`)
  const requesters = []
  for (let i = 0; i < clients; i++) {
    const user = await registerUser(first.url, `${prefix}-req${i}`)
    // A large balance keeps each payer's priority bucket still while jobs are paid for.
    await first.call('grant', { userId: user.id, kudos: 1_000_000 })
    requesters.push(user)
  }
  const workerPeers: Peer[] = new Array(workers)
  await pool(Array.from({ length: workers }, (_, i) => i), 20, async (i) => {
    workerPeers[i] = await connectWorker(brokers[i % brokers.length].wsUrl, owner.key, { name: `${prefix}-w${i}` })
    workerPeers[i].buffering = false
  })
  const clientPeers = await Promise.all(requesters.map((r, i) => connectClient(brokers[i % brokers.length].wsUrl, r.key)))
  return { workers: workerPeers, clients: clientPeers }
}

async function brokerStreams(ctx: BenchContext, count: number, warmupMs: number, measureMs: number): Promise<number> {
  const broker = await startBrokerChild(brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/streams`, prefix: 'str' }), ctx.childNodeArgs)
  const perClient = 50
  const peers = await workersAndClients(ctx, [broker], 'str', count, Math.ceil(count / perClient))
  try {
    // Workers know jobs by their own ids, clients know requests: each submission's prompt
    // carries its submit id, and the client's `accepted` names the request of that id.
    const streams = new Map<string, Stream>()
    const bySubmit = new Map<string, Stream>()
    const requestOf = new Map<string, string>()
    const allStarted = new Promise<void>((resolve) => {
      for (const worker of peers.workers) {
        worker.onFrame = (frame) => {
          if (frame.type !== 'job') return
          const job = frame.job as string
          const stream: Stream = { up: worker, sent: 0, received: 0, frame: (seq) => `{"type":"chunk","job":"${job}","seq":${seq},"text":" token"}` }
          streams.set(job, stream)
          bySubmit.set(String(frame.prompt).slice(PROMPT.length), stream)
          if (streams.size === count) resolve()
        }
      }
    })
    peers.clients.forEach((client, c) => {
      client.buffering = false
      client.onFrame = (frame) => { if (frame.type === 'accepted') requestOf.set(frame.id, frame.request) }
      for (let i = 0; i < Math.min(perClient, count - c * perClient); i++) {
        client.send({ type: 'submit', id: `${c}-${i}`, prompt: `${PROMPT}${c}-${i}`, models: [BENCH_MODEL], max_length: 512 })
      }
    })
    await withTimeout(allStarted, 30_000, 'every stream to start')
    const deadline = Date.now() + 15_000
    while (requestOf.size < count && Date.now() < deadline) await sleep(20)
    const byRequest = new Map<string, Stream>()
    for (const [submit, request] of requestOf) {
      const stream = bySubmit.get(submit)
      if (stream) byRequest.set(request, stream)
    }
    if (byRequest.size !== count) throw new Error(`relay throughput: ${byRequest.size} of ${count} streams paired with their requests`)
    const rate = await driveStreams(byRequest, peers.clients, (frame) => frame.request, warmupMs, measureMs, (text) => ctx.progress(`relay throughput: broker, ${text}`))
    for (const [job, stream] of streams) stream.up.ws.send(`{"type":"done","job":"${job}","chunks":${stream.sent}}`)
    return rate
  } finally {
    for (const peer of [...peers.workers, ...peers.clients]) peer.close()
    await broker.stop()
  }
}

async function rawStreams(count: number, warmupMs: number, measureMs: number, progress: (text: string) => void): Promise<number> {
  const raw = await startRawChild()
  const ups: Peer[] = []
  const downs: Peer[] = []
  try {
    const streams = new Map<string, Stream>()
    for (let i = 0; i < count; i++) {
      const key = `job${i}`
      downs.push(await connect(`${raw.wsUrl}/relay?pair=${key}&role=down`))
      const up = await connect(`${raw.wsUrl}/relay?pair=${key}&role=up`)
      ups.push(up)
      streams.set(key, { up, sent: 0, received: 0, frame: (seq) => `{"type":"chunk","job":"${key}","seq":${seq},"text":" token"}` })
    }
    return await driveStreams(streams, downs, (frame) => frame.job, warmupMs, measureMs, (text) => progress(`relay throughput: raw, ${text}`))
  } finally {
    for (const peer of [...ups, ...downs]) peer.close()
    await raw.stop()
  }
}

/** Commands Redis has run so far, all kinds together (the INFO call itself included). */
async function commandsSoFar(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats')
  let calls = 0
  for (const match of info.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1])
  return calls
}

export interface JobFigures {
  rate: number
  commandsPerJob: number
  framesPerJob: number
}

/**
 * jobs/s through broker children; `where` picks their data directory, Redis prefix and extra
 * settings (the pg family: DATABASE_URL; the cluster family: CLUSTER=on and `processes`, the
 * workers and clients then spread over that many processes of one cluster).
 */
export async function brokerJobs(ctx: BenchContext, workerCount: number, outstanding: number, warmupMs: number, measureMs: number,
  where: { dataDir: string; prefix: string; env?: Record<string, string>; processes?: number } = { dataDir: `${ctx.dir}/jobs`, prefix: 'jobs' }): Promise<JobFigures> {
  const brokers: Child[] = []
  for (let i = 0; i < (where.processes ?? 1); i++) {
    brokers.push(await startBrokerChild({ ...brokerEnv({ redisUrl: ctx.redisUrl, dataDir: where.dataDir, prefix: where.prefix }), ...where.env }, ctx.childNodeArgs))
  }
  // Four requesters (six for three processes) with `outstanding` requests each: no worker idles for want of work.
  const peers = await workersAndClients(ctx, brokers, where.prefix, workerCount, brokers.length === 3 ? 6 : 4)
  let submitting = true
  let measuring = false
  let completed = 0
  let frames = 0
  let refused: string | undefined
  const stats = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null })
  try {
    for (const worker of peers.workers) {
      worker.onFrame = (frame) => {
        if (measuring) frames++
        if (frame.type !== 'job') return
        worker.ws.send(`{"type":"chunk","job":"${frame.job}","seq":0,"text":"Hello there"}`)
        worker.ws.send(`{"type":"done","job":"${frame.job}","chunks":1}`)
        if (measuring) frames += 2
      }
    }
    let serial = 0
    const submit = (client: Peer) => {
      if (measuring) frames++
      client.ws.send(`{"type":"submit","id":${++serial},"prompt":"Once upon a time","models":["${BENCH_MODEL}"],"max_length":80}`)
    }
    for (const client of peers.clients) {
      client.buffering = false
      client.onFrame = (frame) => {
        if (measuring) frames++
        if (frame.type === 'done') {
          if (measuring) completed++
          if (submitting) submit(client)
        } else if (frame.type === 'error') refused ??= `${frame.code}: ${frame.message}`
      }
      for (let i = 0; i < outstanding; i++) submit(client)
    }
    await sleep(warmupMs)
    const commandsBefore = await commandsSoFar(stats)
    measuring = true
    const start = performance.now()
    const ticker = setInterval(() => ctx.progress(`jobs per second: broker, ${Math.round(completed / ((performance.now() - start) / 1000))} jobs/s so far`), 1000)
    await sleep(measureMs)
    measuring = false
    const commands = (await commandsSoFar(stats)) - commandsBefore
    clearInterval(ticker)
    const rate = completed / ((performance.now() - start) / 1000)
    submitting = false
    if (refused) throw new Error(`the broker refused a submission: ${refused}`)
    return { rate, commandsPerJob: commands / Math.max(1, completed), framesPerJob: frames / Math.max(1, completed) }
  } finally {
    stats.disconnect()
    submitting = false
    for (const peer of [...peers.workers, ...peers.clients]) peer.close()
    await Promise.all(brokers.map((broker) => broker.stop()))
  }
}

/** BullMQ alone: jobs added in bulk beforehand, then one loop fetching and completing them. */
async function bullmqJobs(redisUrl: string, prefill: number, measureMs: number): Promise<JobFigures> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null })
  const name = `jobs-${randomUUID().slice(0, 8)}`
  const queue = new Queue(name, { connection, prefix: 'bench' })
  const worker = new Worker(name, null, { connection, prefix: 'bench', autorun: false })
  worker.on('error', () => {})
  try {
    for (let i = 0; i < prefill; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, prefill - i) }, (_, j) => ({
        name: 'generate',
        data: { request: `r${i + j}`, prompt: 'Once upon a time' },
        opts: { jobId: `r${i + j}`, priority: 1_048_576, removeOnComplete: true },
      })))
    }
    const token = randomUUID()
    let done = 0
    const commandsBefore = await commandsSoFar(connection)
    const start = performance.now()
    const end = start + measureMs
    while (performance.now() < end) {
      const job = await worker.getNextJob(token, { block: false })
      if (!job) break
      await job.moveToCompleted('ok', token, false)
      done++
    }
    const rate = done / ((performance.now() - start) / 1000)
    const commands = (await commandsSoFar(connection)) - commandsBefore
    return { rate, commandsPerJob: commands / Math.max(1, done), framesPerJob: 0 }
  } finally {
    await worker.close(true).catch(() => {})
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    connection.disconnect()
  }
}
