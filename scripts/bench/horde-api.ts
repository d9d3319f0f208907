/**
 * The AI Horde v2 door, against a broker child: a polling bridge's pop is parked (long
 * poll), a native client submits a request for the bridge's model, and the time is taken
 * until the pop's answer, carrying the job, is in the bridge's hands. Beside it, in the same
 * run and alternating round by round, the native dispatch (client `submit` -> the idle
 * socket worker receives `job`), which is the baseline: a polling worker should get a job as
 * soon as a pushed one does.
 */
import { figure, percentile, size, sleep, withTimeout, type BenchContext } from './common.js'
import { BENCH_MODEL, connectClient, connectWorker, registerUser, type Peer } from './peer.js'
import { brokerEnv, startBrokerChild } from './processes.js'

const BRIDGE_MODEL = 'bench/bridge-model'

export async function runHordeApi(ctx: BenchContext): Promise<void> {
  const rounds = size(ctx.mode, 500, 100, 5)
  const warmup = size(ctx.mode, 10, 10, 2)
  const env = { ...brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/horde-api`, prefix: 'v2' }), HORDE_API_POP_WAIT_SECONDS: '30' }
  const broker = await startBrokerChild(env, ctx.childNodeArgs)
  const peers: Peer[] = []
  try {
    const owner = await registerUser(broker.url, 'v2-owner')
    const requester = await registerUser(broker.url, 'v2-requester')
    await broker.call('grant', { userId: requester.id, kudos: 1_000_000 })
    const worker = await connectWorker(broker.wsUrl, owner.key, { name: 'v2-socket-worker' })
    const client = await connectClient(broker.wsUrl, requester.key)
    peers.push(worker, client)
    worker.buffering = false
    client.buffering = false
    const headers = { apikey: owner.key, 'content-type': 'application/json', 'client-agent': 'horde-broker-bench:1:none' }
    const popBody = JSON.stringify({ name: 'v2-bridge', models: [BRIDGE_MODEL], max_length: 512, max_context_length: 4096, bridge_agent: 'bench:1:none' })
    const pop = async () => (await (await fetch(`${broker.url}/api/v2/generate/text/pop`, { method: 'POST', headers, body: popBody })).json()) as { id: string | null }
    const submit = async (id: string) => (await fetch(`${broker.url}/api/v2/generate/text/submit`, { method: 'POST', headers, body: JSON.stringify({ id, generation: 'Hello', state: 'ok' }) })).json()

    let onDone: (() => void) | undefined
    client.onFrame = (frame) => {
      if (frame.type === 'done') onDone?.()
      else if (frame.type === 'error') throw new Error(`submit refused: ${frame.code} ${frame.message}`)
    }
    let onJob: ((at: number) => void) | undefined
    worker.onFrame = (frame) => {
      if (frame.type !== 'job') return
      onJob?.(performance.now())
      worker.ws.send(`{"type":"chunk","job":"${frame.job}","seq":0,"text":"Hello"}`)
      worker.ws.send(`{"type":"done","job":"${frame.job}","chunks":1}`)
    }
    // The bridge's first pop checks it in; it stays online for the rest of the run.
    const first = pop()
    await sleep(50)
    client.ws.send(`{"type":"submit","id":"first","prompt":"Once upon a time","models":["${BRIDGE_MODEL}"],"max_length":80}`)
    await submit((await withTimeout(first, 10_000, 'the first pop')).id!)

    const polled: number[] = []
    const pushed: number[] = []
    for (let i = 0; i < rounds + warmup; i++) {
      ctx.progress(`v2 pop vs native dispatch: round ${i + 1}/${rounds + warmup}`)
      // Native: the idle socket worker.
      let done = new Promise<void>((resolve) => (onDone = resolve))
      const got = new Promise<number>((resolve) => (onJob = resolve))
      const sent = performance.now()
      client.ws.send(`{"type":"submit","id":"n${i}","prompt":"Once upon a time","models":["${BENCH_MODEL}"],"max_length":80}`)
      const nativeMs = (await withTimeout(got, 10_000, `native round ${i}`)) - sent
      await withTimeout(done, 10_000, `native round ${i} done`)
      // The socket worker is idle again once its settlement is pushed and the broker looked for more work.
      await sleep(2)
      // Polling: a pop parked before the request exists.
      done = new Promise<void>((resolve) => (onDone = resolve))
      const parked = pop()
      await sleep(5)
      const t0 = performance.now()
      client.ws.send(`{"type":"submit","id":"p${i}","prompt":"Once upon a time","models":["${BRIDGE_MODEL}"],"max_length":80}`)
      const answer = await withTimeout(parked, 10_000, `pop round ${i}`)
      const popMs = performance.now() - t0
      if (!answer.id) throw new Error(`pop round ${i} came back empty`)
      await submit(answer.id)
      await withTimeout(done, 10_000, `pop round ${i} done`)
      if (i >= warmup) {
        polled.push(popMs)
        pushed.push(nativeMs)
      }
      await sleep(2)
    }
    ctx.record('v2_pop_dispatch_p50_ms', figure(percentile(polled, 50), 'ms', percentile(pushed, 50)))
    ctx.record('v2_pop_dispatch_p99_ms', figure(percentile(polled, 99), 'ms', percentile(pushed, 99)))
  } finally {
    for (const peer of peers) peer.close()
    await broker.stop()
  }
}
