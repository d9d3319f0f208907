import t from 'tap'
import { UptimeTracker } from '../src/economy/uptime.js'
import { uptimeRewardPerPeriod } from '../src/economy/rewards.js'
import { balanceOf, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { rawWorker } from './helpers/pipeline.js'
import type { Peer } from './helpers/ws.js'

const HEARTBEAT_MS = 15_000
const PER_PERIOD = uptimeRewardPerPeriod(4096, 13) // 157.857… per 10 minutes

t.test('the tracker credits observed time, not silence, floods or reconnects', async (t) => {
  let now = 0
  const tracker = new UptimeTracker(HEARTBEAT_MS, { now: () => now })
  tracker.pong('w')
  for (let i = 0; i < 40; i++) {
    now += HEARTBEAT_MS
    tracker.pong('w')
  }
  t.equal(tracker.accrued('w'), 600_000, '40 heartbeats = 10 minutes')
  now += 120_000 // silent for 8 heartbeats
  t.equal(tracker.pong('w'), 0, 'the pong after a silence credits nothing')
  for (let i = 0; i < 1000; i++) tracker.pong('w') // a flood at one instant
  t.equal(tracker.accrued('w'), 600_000, 'a flood earns nothing')
  now += 5000
  for (let i = 0; i < 100; i++) { now += 10; tracker.pong('w') }
  t.equal(tracker.accrued('w'), 600_000 + 5000 + 1000, 'many pongs earn exactly the real time between them')
  t.equal(tracker.take('w'), 606_000)
  t.equal(tracker.take('w'), 0, 'taken once')
  tracker.forget('w')
  now += 1000
  t.equal(tracker.pong('w'), 0, 'a new session starts a new timeline: the first pong earns nothing')
})

/** Advances the injected clock by one heartbeat, pings every socket, waits for the pongs. */
async function heartbeat(broker: any, clock: { t: number }, peers: Peer[], expectPong = true): Promise<void> {
  clock.t += HEARTBEAT_MS
  const pongs = new Promise<void>((resolve) => {
    if (!expectPong) return setTimeout(resolve, 50)
    let left = peers.length
    const on = () => { if (--left === 0) { broker.services.hub.off('pong', on); resolve() } }
    broker.services.hub.on('pong', on)
  })
  broker.services.hub.tick()
  await pongs
}

t.test('a connected worker earns the formula\'s uptime within a heartbeat\'s worth; a silent one earns nothing', async (t) => {
  const redis = await startTestRedis(t)
  const clock = { t: 1_000_000 }
  const { broker, wsUrl, url } = await startBroker(t, { redis, clock: { now: () => clock.t }, env: { HEARTBEAT_SECONDS: '15' } })
  const owner = await registerUser(url, 'owner')
  const spec = { name: 'steady', models: ['koboldcpp/LLaMA2-13B-Tiefighter'], max_context_length: 4096 }
  let worker = await rawWorker(wsUrl, owner.key, spec)
  t.teardown(() => worker.close())

  for (let i = 0; i < 41; i++) await heartbeat(broker, clock, [worker])
  await broker.core.uptimePayer.flush(broker.core.workforce.online)
  const earned = await balanceOf(broker, owner.id)
  t.ok(Math.abs(earned - PER_PERIOD) <= PER_PERIOD * (HEARTBEAT_MS / 600_000) + 0.001, `10 simulated minutes earned ${earned} of ${PER_PERIOD.toFixed(3)}`)

  // Silent: the worker stops reading, so it answers no ping.
  ;(worker.ws as any)._socket.pause()
  for (let i = 0; i < 8; i++) await heartbeat(broker, clock, [worker], false)
  ;(worker.ws as any)._socket.resume()
  await heartbeat(broker, clock, [worker])
  await broker.core.uptimePayer.flush(broker.core.workforce.online)
  t.ok((await balanceOf(broker, owner.id)) - earned < PER_PERIOD * (HEARTBEAT_MS / 600_000), 'the silent two minutes earned nothing')

  // Reconnecting does not pay twice.
  const before = await balanceOf(broker, owner.id)
  worker.close()
  await worker.closed
  worker = await rawWorker(wsUrl, owner.key, spec)
  await heartbeat(broker, clock, [worker])
  await broker.core.uptimePayer.flush(broker.core.workforce.online)
  t.equal(await balanceOf(broker, owner.id), before, 'the first heartbeat of a new session earns nothing')
  await heartbeat(broker, clock, [worker])
  await broker.core.uptimePayer.flush(broker.core.workforce.online)
  t.ok((await balanceOf(broker, owner.id)) > before, 'then it earns again')
  const row = (await broker.services.store.workers.byName('steady'))!
  t.ok(row.uptimeMs >= 600_000 - 1 && row.uptimeMs <= 640_000, `worker row records ${row.uptimeMs} ms online`)
  const minted = await broker.services.store.audit.mintedBy('uptime')
  t.equal(minted / 1000, await balanceOf(broker, owner.id), 'uptime is minted, and only to the owner')
})
