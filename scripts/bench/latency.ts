/**
 * Latency scenarios, one request at a time over real sockets to a broker child:
 * - dispatch: client `submit` sent -> the idle worker receives `job`
 *   (baseline: BullMQ alone, `queue.add` -> a parked `getNextJob`);
 * - time to first token: client `submit` sent -> first `chunk` at the client, the worker
 *   answering its job at once (no baseline: a polling horde answers in >= 1 s);
 * - relay: worker sends `chunk` -> the client receives it
 *   (baseline: the same frame through a raw ws relay child, worker side to client side).
 */
import { randomUUID } from 'node:crypto'
import { Queue, Worker, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import { figure, percentile, size, sleep, withTimeout, type BenchContext } from './common.js'
import { BENCH_MODEL, connect, connectClient, connectWorker, registerUser, type Peer } from './peer.js'
import { brokerEnv, startBrokerChild, startRawChild } from './processes.js'

const WARMUP = 20

export async function runLatency(ctx: BenchContext): Promise<void> {
  const dispatchRounds = size(ctx.mode, 1000, 150, 20)
  const relayRounds = size(ctx.mode, 3000, 500, 50)

  const broker = await startBrokerChild(brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/latency`, prefix: 'lat' }), ctx.childNodeArgs)
  const peers: Peer[] = []
  try {
    const owner = await registerUser(broker.url, 'lat-owner')
    const requester = await registerUser(broker.url, 'lat-requester')
    // A large balance keeps the payer's priority bucket still: no re-prioritization in the loop.
    await broker.call('grant', { userId: requester.id, kudos: 1_000_000 })
    const worker = await connectWorker(broker.wsUrl, owner.key, { name: 'lat-worker' })
    const client = await connectClient(broker.wsUrl, requester.key)
    peers.push(worker, client)
    worker.buffering = false
    client.buffering = false

    // --- dispatch and time to first token -------------------------------------------------
    const dispatch: number[] = []
    const ttft: number[] = []
    let t0 = 0
    let round: { job?: number; chunk?: number; done(): void; settled(): void } | undefined
    worker.onFrame = (frame) => {
      if (frame.type === 'job') {
        if (round) round.job = performance.now()
        worker.ws.send(`{"type":"chunk","job":"${frame.job}","seq":0,"text":"Hello"}`)
        worker.ws.send(`{"type":"done","job":"${frame.job}","chunks":1}`)
      } else if (frame.type === 'settled') round?.settled()
    }
    client.onFrame = (frame) => {
      if (frame.type === 'chunk' && round && round.chunk === undefined) round.chunk = performance.now()
      else if (frame.type === 'done') round?.done()
      else if (frame.type === 'error') throw new Error(`submit refused: ${frame.code} ${frame.message}`)
    }
    for (let i = 0; i < dispatchRounds + WARMUP; i++) {
      ctx.progress(`dispatch + time to first token: round ${i + 1}/${dispatchRounds + WARMUP}`)
      let doneResolve!: () => void
      let settledResolve!: () => void
      const finished = Promise.all([new Promise<void>((r) => (doneResolve = r)), new Promise<void>((r) => (settledResolve = r))])
      round = { done: doneResolve, settled: settledResolve }
      t0 = performance.now()
      client.ws.send(`{"type":"submit","id":${i},"prompt":"Once upon a time","models":["${BENCH_MODEL}"],"max_length":80}`)
      await withTimeout(finished, 10_000, `dispatch round ${i}`)
      if (i >= WARMUP) {
        dispatch.push(round.job! - t0)
        ttft.push(round.chunk! - t0)
      }
      // The worker is idle again once its settlement is pushed and the broker looked for more work.
      await sleep(2)
    }

    // How many of those submissions the dispatch fast path took (its claim got the new job).
    const metrics = await (await fetch(`${broker.url}/metrics`)).text()
    const own = Number(/^horde_fast_dispatch_total\{claimed="own"\} (\d+)/m.exec(metrics)?.[1] ?? 0)

    // --- relay: one chunk at a time through a running job ----------------------------------
    const relay: number[] = []
    let job = ''
    let received: (() => void) | undefined
    const started = new Promise<void>((resolve) => {
      worker.onFrame = (frame) => {
        if (frame.type === 'job') {
          job = frame.job
          resolve()
        }
      }
    })
    client.onFrame = (frame) => {
      if (frame.type === 'chunk') received?.()
    }
    client.ws.send(`{"type":"submit","id":"relay","prompt":"Once upon a time","models":["${BENCH_MODEL}"],"max_length":512}`)
    await withTimeout(started, 10_000, 'the relay job')
    for (let seq = 0; seq < relayRounds + WARMUP; seq++) {
      if (seq % 500 === 0) ctx.progress(`relay latency: chunk ${seq}/${relayRounds + WARMUP}`)
      const arrived = new Promise<void>((resolve) => (received = resolve))
      const start = performance.now()
      worker.ws.send(`{"type":"chunk","job":"${job}","seq":${seq},"text":" token"}`)
      await withTimeout(arrived, 10_000, `relay chunk ${seq}`)
      if (seq >= WARMUP) relay.push(performance.now() - start)
    }
    worker.ws.send(`{"type":"done","job":"${job}","chunks":${relayRounds + WARMUP}}`)

    // --- baselines ---------------------------------------------------------------------------
    ctx.progress('dispatch baseline: BullMQ queue.add -> parked getNextJob')
    const bullDispatch = await bullmqDispatch(ctx.redisUrl, dispatchRounds)
    ctx.progress('relay baseline: raw ws relay')
    const rawRelay = await rawRelayLatency(relayRounds, `{"type":"chunk","job":"${job}","seq":0,"text":" token"}`)

    const d50 = percentile(dispatch, 50)
    const d99 = percentile(dispatch, 99)
    ctx.record('dispatch_p50_ms', figure(d50, 'ms', percentile(bullDispatch, 50)))
    ctx.record('dispatch_p99_ms', figure(d99, 'ms', percentile(bullDispatch, 99)))
    ctx.record('relay_p50_ms', figure(percentile(relay, 50), 'ms', percentile(rawRelay, 50)))
    ctx.record('relay_p99_ms', figure(percentile(relay, 99), 'ms', percentile(rawRelay, 99)))
    ctx.record('time_to_first_token_ms', figure(percentile(ttft, 50), 'ms', null))
    ctx.record('fast_dispatch_share', figure(own / (dispatchRounds + WARMUP), 'share', null))
  } finally {
    for (const peer of peers) peer.close()
    await broker.stop()
  }
}

/** BullMQ alone: a Worker parked in a blocking getNextJob, then queue.add; until the job is in hand. */
async function bullmqDispatch(redisUrl: string, rounds: number): Promise<number[]> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null })
  const name = `dispatch-${randomUUID().slice(0, 8)}`
  const queue = new Queue(name, { connection, prefix: 'bench' })
  const worker = new Worker(name, null, { connection, prefix: 'bench', autorun: false })
  worker.on('error', () => {})
  const token = randomUUID()
  const nextJob = async (): Promise<Job> => {
    for (;;) {
      const job = await worker.getNextJob(token, { block: true })
      if (job) return job
    }
  }
  const sample: number[] = []
  try {
    for (let i = 0; i < rounds + WARMUP; i++) {
      const waiting = nextJob()
      // Let the fetch reach its blocking call, as an idle worker's would be.
      await sleep(3)
      const start = performance.now()
      void queue.add('generate', { request: `r${i}`, prompt: 'Once upon a time' }, { jobId: `r${i}`, priority: 1_048_576, removeOnComplete: true })
      const job = await withTimeout(waiting, 10_000, 'BullMQ getNextJob')
      if (i >= WARMUP) sample.push(performance.now() - start)
      await job.moveToCompleted('ok', token, false)
    }
  } finally {
    await worker.close(true).catch(() => {})
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    connection.disconnect()
  }
  return sample
}

/** The same frame, sent by a socket and received by another through a relay that adds nothing. */
async function rawRelayLatency(rounds: number, frame: string): Promise<number[]> {
  const raw = await startRawChild()
  try {
    const down = await connect(`${raw.wsUrl}/relay?pair=lat&role=down`)
    const up = await connect(`${raw.wsUrl}/relay?pair=lat&role=up`)
    down.buffering = false
    let received: (() => void) | undefined
    down.onFrame = () => received?.()
    const sample: number[] = []
    for (let i = 0; i < rounds + WARMUP; i++) {
      const arrived = new Promise<void>((resolve) => (received = resolve))
      const start = performance.now()
      up.ws.send(frame)
      await withTimeout(arrived, 10_000, 'raw relay frame')
      if (i >= WARMUP) sample.push(performance.now() - start)
    }
    up.close()
    down.close()
    return sample
  } finally {
    await raw.stop()
  }
}
