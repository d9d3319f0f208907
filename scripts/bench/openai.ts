/**
 * First token over the OpenAI-compatible endpoint, beside the native client's, in the same
 * run against the same broker child and worker: `POST /v1/chat/completions` with
 * `stream: true` sent -> the first server-sent event carrying text read from the response
 * body; the baseline is the client socket's `submit` sent -> its first `chunk`. The worker
 * answers each job at once, so both figures are the broker's own path (submission, dispatch,
 * relay), plus, for the endpoint, HTTP, the chat template and the SSE framing. Rounds
 * alternate between the two, so load on the machine falls on both alike.
 */
import { figure, percentile, size, sleep, withTimeout, type BenchContext } from './common.js'
import { BENCH_MODEL, connectClient, connectWorker, registerUser, type Peer } from './peer.js'
import { brokerEnv, startBrokerChild } from './processes.js'

const WARMUP = 10

/** Sends one streaming chat call; resolves with the ms until the first text arrived, after reading the stream to its end. */
async function sseFirstToken(url: string, key: string): Promise<number> {
  const start = performance.now()
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: BENCH_MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 80, stream: true }),
  })
  if (response.status !== 200 || !response.body) throw new Error(`the endpoint answered ${response.status}: ${await response.text()}`)
  let first: number | undefined
  let buffered = ''
  const decoder = new TextDecoder()
  for await (const piece of response.body) {
    buffered += decoder.decode(piece as Uint8Array, { stream: true })
    if (first === undefined && /"content":"[^"]/.test(buffered)) first = performance.now()
  }
  if (first === undefined) throw new Error(`no text in the stream: ${buffered.slice(0, 500)}`)
  return first - start
}

export async function runOpenAI(ctx: BenchContext): Promise<void> {
  const rounds = size(ctx.mode, 500, 100, 10)
  const broker = await startBrokerChild(brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/openai`, prefix: 'oai' }), ctx.childNodeArgs)
  const peers: Peer[] = []
  try {
    const owner = await registerUser(broker.url, 'oai-owner')
    const requester = await registerUser(broker.url, 'oai-requester')
    await broker.call('grant', { userId: requester.id, kudos: 1_000_000 })
    const worker = await connectWorker(broker.wsUrl, owner.key, { name: 'oai-worker' })
    const client = await connectClient(broker.wsUrl, requester.key)
    peers.push(worker, client)
    worker.buffering = false
    client.buffering = false
    let settled: (() => void) | undefined
    worker.onFrame = (frame) => {
      if (frame.type === 'job') {
        worker.ws.send(`{"type":"chunk","job":"${frame.job}","seq":0,"text":"Hello"}`)
        worker.ws.send(`{"type":"done","job":"${frame.job}","chunks":1}`)
      } else if (frame.type === 'settled') settled?.()
    }
    let chunkAt: number | undefined
    let done: (() => void) | undefined
    client.onFrame = (frame) => {
      if (frame.type === 'chunk' && chunkAt === undefined) chunkAt = performance.now()
      else if (frame.type === 'done') done?.()
      else if (frame.type === 'error') throw new Error(`submit refused: ${frame.code} ${frame.message}`)
    }
    const sse: number[] = []
    const native: number[] = []
    for (let i = 0; i < rounds + WARMUP; i++) {
      ctx.progress(`first token, SSE and native: round ${i + 1}/${rounds + WARMUP}`)
      const sseSettled = new Promise<void>((resolve) => (settled = resolve))
      const overSse = await withTimeout(sseFirstToken(broker.url, requester.key), 10_000, `SSE round ${i}`)
      await withTimeout(sseSettled, 10_000, `SSE round ${i} settled`)
      chunkAt = undefined
      const finished = Promise.all([new Promise<void>((resolve) => (done = resolve)), new Promise<void>((resolve) => (settled = resolve))])
      const start = performance.now()
      client.ws.send(`{"type":"submit","id":${i},"prompt":"Once upon a time","models":["${BENCH_MODEL}"],"max_length":80}`)
      await withTimeout(finished, 10_000, `native round ${i}`)
      if (i >= WARMUP) {
        sse.push(overSse)
        native.push(chunkAt! - start)
      }
      // The worker is idle again once its settlement is pushed and the broker looked for more work.
      await sleep(2)
    }
    ctx.record('openai_first_token_p50_ms', figure(percentile(sse, 50), 'ms', percentile(native, 50)))
    ctx.record('openai_first_token_p99_ms', figure(percentile(sse, 99), 'ms', percentile(native, 99)))
  } finally {
    for (const peer of peers) peer.close()
    await broker.stop()
  }
}
