/**
 * Protocol fuzz: thousands of random and mutated frames at the worker, client and bot
 * sockets. Every frame below is invalid by construction (garbage, binary, wrong shapes,
 * unknown types, or a well-formed message with a field no schema allows), so each must be
 * answered by exactly one coded error; invalid UTF-8 must close the socket with 1007. The
 * process must not crash, and legitimate sessions on the same server must keep working.
 */
import t from 'tap'
import { api, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { connect, type Peer } from './helpers/ws.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

/** mulberry32: a small seeded PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const VALID: Record<string, object[]> = {
  worker: [
    { type: 'chunk', job: 'j', seq: 0, text: 'x' },
    { type: 'done', job: 'j', chunks: 1 },
    { type: 'fail', job: 'j', reason: 'r' },
  ],
  client: [
    { type: 'submit', id: 's', prompt: 'p', max_length: 10 },
    { type: 'attach', id: 'a', request: 'r' },
    { type: 'cancel', id: 'c', request: 'r' },
  ],
  bot: [
    { type: 'transfer', id: 't', to: 'nobody', amount: 1, idempotencyKey: 'k' },
    { type: 'balance', id: 'b' },
    { type: 'ledger', id: 'l', limit: 5 },
    { type: 'find_user', id: 'f', user: 'x' },
  ],
}

function randomValue(rand: () => number, depth = 0): unknown {
  const pick = Math.floor(rand() * (depth > 3 ? 6 : 9))
  switch (pick) {
    case 0: return null
    case 1: return rand() < 0.5
    case 2: return [1e308, -1e308, 2 ** 53 + 1, -0, 0.1, 4294967296, -1][Math.floor(rand() * 7)]
    case 3: return Math.floor(rand() * 1e6) - 5e5
    case 4: return String.fromCharCode(...Array.from({ length: Math.floor(rand() * 20) }, () => Math.floor(rand() * 0xd7ff)))
    case 5: return ''
    case 6: return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1))
    case 7: return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, (_, i) => [`k${i}`, randomValue(rand, depth + 1)]))
    default: return '\u0000\uffff\ud7ff'
  }
}

/** One invalid frame: [data, binary]. */
function badFrame(rand: () => number, channel: string): [string | Buffer, boolean] {
  const base = VALID[channel][Math.floor(rand() * VALID[channel].length)] as Record<string, unknown>
  switch (Math.floor(rand() * 9)) {
    case 0: return [Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))), true]
    case 1: return [JSON.stringify(base).slice(0, Math.floor(rand() * 10) + 1) + '{', false] // truncated
    case 2: return [JSON.stringify(randomValue(rand)) ?? 'undefined', false].map((v, i) => (i === 0 && /^\{/.test(v as string) ? `[${v}]` : v)) as [string, boolean]
    case 3: return [JSON.stringify({ ...base, type: `fuzz-${Math.floor(rand() * 1e6)}` }), false]
    case 4: return [JSON.stringify({ ...base, type: randomValue(rand) ?? 7 }).replace('"type":""', '"type":7'), false]
    case 5: return [`{"type":"${base.type}","id":"x","deep":${'['.repeat(5000)}${']'.repeat(5000)}}`, false]
    case 6: return [JSON.stringify({ ...base, [`fuzz_${Math.floor(rand() * 1e6)}`]: randomValue(rand) }), false]
    case 7: {
      // Every field of a valid message replaced by a value of the wrong type.
      const mutated: Record<string, unknown> = { type: base.type }
      for (const [key, value] of Object.entries(base)) if (key !== 'type') mutated[key] = typeof value === 'string' ? { no: 1 } : 'not-a-number'
      return [JSON.stringify(mutated), false]
    }
    default: return [JSON.stringify({ ...base, id: { nested: randomValue(rand) } }), false]
  }
}

async function fuzzSocket(t: any, open: () => Promise<Peer>, channel: string, seed: number, frames: number): Promise<number> {
  const rand = prng(seed)
  let sent = 0
  while (sent < frames) {
    const peer = await open()
    const batch = Math.min(80, frames - sent) // under the 100-bad-frame budget of one socket
    const before = peer.frames.filter((f) => f.type === 'error').length
    for (let i = 0; i < batch; i++) {
      const [data, binary] = badFrame(rand, channel)
      peer.sendRaw(data, binary)
    }
    const deadline = Date.now() + 10_000
    while (peer.frames.filter((f) => f.type === 'error').length - before < batch && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    const errors = peer.frames.filter((f) => f.type === 'error').slice(before)
    if (errors.length !== batch) t.fail(`${channel} seed ${seed}: ${batch} bad frames, ${errors.length} errors`)
    if (!errors.every((e) => typeof e.code === 'string' && typeof e.message === 'string')) t.fail(`${channel}: an error without a code`)
    if (peer.frames.some((f) => f.type === 'result' || f.type === 'accepted')) t.fail(`${channel}: a bad frame was acted on`)
    peer.close()
    await peer.closed
    sent += batch
  }
  return sent
}

t.test('thousands of bad frames on every socket: coded errors, no crash, legitimate sessions unaffected', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { CONNECTIONS_PER_IP: '1000', UPGRADES_PER_SECOND: '1000', BOT_COMMANDS_PER_SECOND: '100000', BOT_COMMAND_BURST: '100000' } })
  const owner = await registerUser(url, 'owner')
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'bob')
  await grant(broker, alice.id, 100)

  // Legitimate sessions, open through the whole run.
  const worker = await rawWorker(wsUrl, owner.key, { name: 'steady' })
  const user = await client(wsUrl, alice.key)
  const bot = await connect(`${wsUrl}/v1/bot`, alice.key)
  t.teardown(() => { worker.close(); user.close(); bot.close() })
  await bot.next('ready')

  const seed = Number(process.env.FUZZ_SEED ?? 20261125)
  const perChannel = 1200
  const fuzzWorker = fuzzSocket(t, async () => {
    const peer = await connect(`${wsUrl}/v1/worker`, owner.key)
    await peer.next('welcome')
    return peer
  }, 'worker', seed, perChannel)
  const fuzzClient = fuzzSocket(t, async () => {
    const peer = await connect(`${wsUrl}/v1/client`)
    await peer.next('welcome')
    return peer
  }, 'client', seed + 1, perChannel)
  const fuzzBot = fuzzSocket(t, async () => {
    const peer = await connect(`${wsUrl}/v1/bot`, bob.key)
    await peer.next('ready')
    return peer
  }, 'bot', seed + 2, perChannel)

  // Meanwhile: a generation and a transfer, done properly.
  const id = await submit(user, { max_length: 20 })
  const job = await worker.next('job')
  serve(worker, job.job, ['still ', 'streaming'])
  t.equal((await user.next('done', 20_000)).text, 'still streaming', 'a generation completes during the fuzz')
  bot.send({ type: 'transfer', id: 'legit', to: 'bob', amount: 1.5, idempotencyKey: 'fuzz-legit' })
  const result = await bot.next((f) => f.id === 'legit', 20_000)
  t.equal(result.type, 'result', 'a transfer completes during the fuzz')
  t.ok(id)

  const counts = await Promise.all([fuzzWorker, fuzzClient, fuzzBot])
  t.same(counts, [perChannel, perChannel, perChannel], `${counts.reduce((a, b) => a + b)} bad frames, each answered with a coded error`)

  // Invalid UTF-8 in a text frame closes with 1007, on every channel.
  for (const [path, key] of [['/v1/worker', owner.key], ['/v1/client', undefined], ['/v1/bot', bob.key]] as const) {
    const peer = await connect(`${wsUrl}${path}`, key)
    peer.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false)
    t.equal((await peer.closed).code, 1007, `${path}: invalid UTF-8 closes with 1007`)
  }

  const health = await api(url, 'GET', '/health')
  t.equal(health.status, 200, 'the broker is healthy after the fuzz')
  t.equal((await broker.services.ledger.account(bob.id))!.balance, 1500, 'exactly the one legitimate transfer moved kudos')
})
