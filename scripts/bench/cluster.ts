/**
 * Several broker processes on one Redis (`CLUSTER=on`), each figure beside Redis alone:
 * - cluster_relay_p50/p99_ms: a worker on process A sends `chunk`, the client on process B
 *   receives it, one at a time (baseline: raw Redis PUBLISH -> a subscriber, one at a time);
 * - single_process_relay_p50_ms: the same through one broker with CLUSTER off (same baseline);
 * - cluster_relay_chunks_per_s / single_process_chunks_per_s: windowed streams, workers on A
 *   and clients on B, or all on one CLUSTER-off broker (baseline: pipelined raw PUBLISH);
 * - cluster_jobs_per_s_{1,2,3}p_{sqlite,pg}: jobs/s with 100 workers spread over 1, 2 and 3
 *   processes of one cluster on one SQLite file or one PostgreSQL database (baseline: one
 *   broker with CLUSTER off on the same store). On 2 cores more processes show that the
 *   cluster is correct under load, not that it is faster.
 */
import { Redis } from 'ioredis'
import { figure, percentile, size, sleep, withTimeout, type BenchContext } from './common.js'
import { BENCH_MODEL, connectClient, connectWorker, registerUser, type Peer } from './peer.js'
import { brokerEnv, startBrokerChild, type Child } from './processes.js'
import { freshDatabase } from './pg.js'
import { brokerJobs, driveStreams, type Stream } from './streams.js'

const WARMUP = 20
const CLUSTER_ENV = { CLUSTER: 'on', SESSION_SECRET: 'bench-cluster-session-secret-0123456789' }
const FRAME = (job: string, seq: number) => `{"type":"chunk","job":"${job}","seq":${seq},"text":" token"}`

export async function runCluster(ctx: BenchContext): Promise<void> {
  const rounds = size(ctx.mode, 2000, 300, 30)
  const streams = size(ctx.mode, 20, 10, 4)
  const warmupMs = size(ctx.mode, 1000, 300, 300)
  const measureMs = size(ctx.mode, 3000, 1000, 500)

  const env = { ...brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/cluster`, prefix: 'cl' }), ...CLUSTER_ENV }
  const a = await startBrokerChild(env, ctx.childNodeArgs)
  const b = await startBrokerChild(env, ctx.childNodeArgs)
  try {
    ctx.progress('cluster relay latency: worker on A, client on B')
    const cross = await relayLatency(a, b, 'cl', rounds)
    ctx.progress('cluster relay throughput: workers on A, clients on B')
    const crossRate = await relayRate(a, b, 'clr', streams, warmupMs, measureMs, ctx)
    ctx.progress('relay baseline: raw Redis PUBLISH')
    const raw = await publishLatency(ctx.redisUrl, rounds)
    const rawRate = await publishRate(ctx.redisUrl, streams, warmupMs, measureMs)
    ctx.record('cluster_relay_p50_ms', figure(percentile(cross, 50), 'ms', percentile(raw, 50)))
    ctx.record('cluster_relay_p99_ms', figure(percentile(cross, 99), 'ms', percentile(raw, 99)))
    ctx.record('cluster_relay_chunks_per_s', figure(crossRate, 'chunks/s', rawRate))

    const single = await startBrokerChild(brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/single`, prefix: 'sg' }), ctx.childNodeArgs)
    try {
      ctx.progress('relay latency: one broker, CLUSTER off')
      const local = await relayLatency(single, single, 'sg', rounds)
      ctx.record('single_process_relay_p50_ms', figure(percentile(local, 50), 'ms', percentile(raw, 50)))
      ctx.progress('relay throughput: one broker, CLUSTER off')
      ctx.record('single_process_chunks_per_s', figure(await relayRate(single, single, 'sgr', streams, warmupMs, measureMs, ctx), 'chunks/s', rawRate))
    } finally {
      await single.stop()
    }
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }

  const workers = size(ctx.mode, 100, 100, 10)
  const outstanding = size(ctx.mode, 50, 50, 5)
  const jobsMeasureMs = size(ctx.mode, 4000, 1500, 1000)
  for (const store of ['sqlite', 'pg'] as const) {
    // Each run on a store of its own: what one run leaves unfinished is not the next run's work.
    const run = async (label: string, processes: number, env: Record<string, string>) => {
      const database = store === 'pg' ? await freshDatabase(`cluster_${label}`) : undefined
      try {
        const where = { dataDir: `${ctx.dir}/jobs-${store}-${label}`, prefix: `j${store}${label}`, processes }
        return (await brokerJobs(ctx, workers, outstanding, warmupMs, jobsMeasureMs, { ...where, env: database ? { ...env, DATABASE_URL: database.url } : env })).rate
      } finally {
        await database?.drop()
      }
    }
    ctx.progress(`cluster jobs per second on ${store}: one broker, CLUSTER off`)
    const alone = await run('off', 1, {})
    for (const processes of [1, 2, 3]) {
      ctx.progress(`cluster jobs per second on ${store}: ${processes} process(es)`)
      ctx.record(`cluster_jobs_per_s_${processes}p_${store}`, figure(await run(`${processes}p`, processes, CLUSTER_ENV), 'jobs/s', alone))
    }
  }
}

/** A worker on `up`'s process and a client on `down`'s, one running job; each chunk timed from send to arrival. */
async function relayLatency(up: Child, down: Child, prefix: string, rounds: number): Promise<number[]> {
  const owner = await registerUser(up.url, `${prefix}-owner`)
  const requester = await registerUser(up.url, `${prefix}-requester`)
  await up.call('grant', { userId: requester.id, kudos: 1_000_000 })
  const worker = await connectWorker(up.wsUrl, owner.key, { name: `${prefix}-worker` })
  const client = await connectClient(down.wsUrl, requester.key)
  worker.buffering = false
  client.buffering = false
  try {
    let job = ''
    let received: (() => void) | undefined
    const started = new Promise<void>((resolve) => {
      worker.onFrame = (frame) => {
        if (frame.type === 'job') { job = frame.job; resolve() }
      }
    })
    const watching = new Promise<void>((resolve) => {
      client.onFrame = (frame) => {
        if (frame.type === 'started') resolve()
        if (frame.type === 'chunk') received?.()
      }
    })
    client.ws.send(`{"type":"submit","id":"relay","prompt":"Once upon a time","models":["${BENCH_MODEL}"],"max_length":512}`)
    await withTimeout(Promise.all([started, watching]), 15_000, 'the relay job to start')
    const sample: number[] = []
    for (let seq = 0; seq < rounds + WARMUP; seq++) {
      const arrived = new Promise<void>((resolve) => (received = resolve))
      const start = performance.now()
      worker.ws.send(FRAME(job, seq))
      await withTimeout(arrived, 10_000, `relay chunk ${seq}`)
      if (seq >= WARMUP) sample.push(performance.now() - start)
    }
    worker.ws.send(`{"type":"done","job":"${job}","chunks":${rounds + WARMUP}}`)
    return sample
  } finally {
    worker.close()
    client.close()
  }
}

/** `count` streams with workers on `up`'s process and their clients on `down`'s, as fast as their windows allow. */
async function relayRate(up: Child, down: Child, prefix: string, count: number, warmupMs: number, measureMs: number, ctx: BenchContext): Promise<number> {
  const owner = await registerUser(up.url, `${prefix}-owner`)
  const requester = await registerUser(up.url, `${prefix}-requester`)
  await up.call('grant', { userId: requester.id, kudos: 1_000_000 })
  const workers: Peer[] = []
  for (let i = 0; i < count; i++) workers.push(await connectWorker(up.wsUrl, owner.key, { name: `${prefix}-w${i}` }))
  const client = await connectClient(down.wsUrl, requester.key)
  try {
    const streams = new Map<string, Stream>()
    const byRequest = new Map<string, Stream>()
    const allStarted = new Promise<void>((resolve) => {
      for (const worker of workers) {
        worker.buffering = false
        worker.onFrame = (frame) => {
          if (frame.type !== 'job') return
          const job = frame.job as string
          streams.set(job, { up: worker, sent: 0, received: 0, frame: (seq) => FRAME(job, seq) })
          if (streams.size === count) resolve()
        }
      }
    })
    const started = new Map<string, string>()
    client.buffering = false
    client.onFrame = (frame) => { if (frame.type === 'started') started.set(frame.request, frame.worker) }
    for (let i = 0; i < count; i++) client.send({ type: 'submit', id: `r${i}`, prompt: 'Once upon a time', models: [BENCH_MODEL], max_length: 512 })
    await withTimeout(allStarted, 30_000, 'every cluster stream to start')
    // The client knows requests, the workers know jobs: pair them through the worker's name.
    const deadline = Date.now() + 15_000
    while (started.size < count && Date.now() < deadline) await sleep(20)
    const byWorker = new Map<string, Stream>()
    for (const stream of streams.values()) byWorker.set(workers.indexOf(stream.up).toString(), stream)
    for (const [request, name] of started) byRequest.set(request, byWorker.get(name.slice(`${prefix}-w`.length))!)
    const rate = await driveStreams(byRequest, [client], (frame) => frame.request, warmupMs, measureMs, (text) => ctx.progress(`cluster relay throughput: ${text}`))
    for (const [job, stream] of streams) stream.up.ws.send(`{"type":"done","job":"${job}","chunks":${stream.sent}}`)
    return rate
  } finally {
    for (const peer of [...workers, client]) peer.close()
  }
}

/** Redis alone: PUBLISH on one connection, a subscriber on another, one message at a time. */
async function publishLatency(url: string, rounds: number): Promise<number[]> {
  const publisher = new Redis(url)
  const subscriber = new Redis(url)
  try {
    let received: (() => void) | undefined
    subscriber.on('message', () => received?.())
    await subscriber.subscribe('bench-relay')
    const sample: number[] = []
    for (let i = 0; i < rounds + WARMUP; i++) {
      const arrived = new Promise<void>((resolve) => (received = resolve))
      const start = performance.now()
      void publisher.publish('bench-relay', FRAME('raw', i))
      await withTimeout(arrived, 10_000, 'raw PUBLISH')
      if (i >= WARMUP) sample.push(performance.now() - start)
    }
    return sample
  } finally {
    publisher.disconnect()
    subscriber.disconnect()
  }
}

/** Redis alone: `count` channels, each with the streams' window of messages in flight; messages received per second. */
async function publishRate(url: string, count: number, warmupMs: number, measureMs: number): Promise<number> {
  const publisher = new Redis(url)
  const subscriber = new Redis(url)
  try {
    const window = 64
    const inFlight = new Array<number>(count).fill(0)
    let running = true
    let measuring = false
    let counted = 0
    const pump = (i: number) => {
      while (running && inFlight[i] < window) { inFlight[i]++; void publisher.publish(`bench-rate-${i}`, FRAME('raw', i)) }
    }
    subscriber.on('message', (channel: string) => {
      const i = Number(channel.slice('bench-rate-'.length))
      inFlight[i]--
      if (measuring) counted++
      if (inFlight[i] <= window / 2) pump(i)
    })
    await subscriber.subscribe(...Array.from({ length: count }, (_, i) => `bench-rate-${i}`))
    for (let i = 0; i < count; i++) pump(i)
    await sleep(warmupMs)
    measuring = true
    const start = performance.now()
    await sleep(measureMs)
    measuring = false
    const rate = counted / ((performance.now() - start) / 1000)
    running = false
    return rate
  } finally {
    publisher.disconnect()
    subscriber.disconnect()
  }
}
