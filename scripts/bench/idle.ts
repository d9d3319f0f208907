/**
 * Idle workers held by one broker process: N workers connect (spread over 127.0.0.x source
 * addresses), authenticate, announce and get `ready`; then they stay idle through two
 * heartbeat rounds, answering pings. Reported: workers still held, and the broker child's
 * RSS growth per held worker (after a full GC, before and after). Baseline: the same number
 * of plain ws connections held and pinged by a raw ws child.
 */
import { figure, pool, rssKb, size, sleep, type BenchContext } from './common.js'
import { connect, connectWorker, registerUser, type Peer } from './peer.js'
import { brokerEnv, startBrokerChild, startRawChild, type Child } from './processes.js'

/** Connections per source address: far below the ~28k ephemeral ports of one address pair. */
const PER_ADDRESS = 5000

function sourceAddress(i: number): string {
  return `127.0.0.${2 + Math.floor(i / PER_ADDRESS)}`
}

export async function runIdle(ctx: BenchContext): Promise<void> {
  const target = size(ctx.mode, 15_000, 1000, 50)
  const heartbeatSeconds = size(ctx.mode, 5, 3, 0.5)

  const broker = await startBrokerChild(brokerEnv({ redisUrl: ctx.redisUrl, dataDir: `${ctx.dir}/idle`, prefix: 'idle', heartbeatSeconds }), ctx.childNodeArgs)
  let brokerHeld = 0
  let brokerKb = Number.NaN
  const peers: Peer[] = []
  try {
    const owner = await registerUser(broker.url, 'idle-owner')
    const before = await broker.settledRss()
    let failures = 0
    await pool(Array.from({ length: target }, (_, i) => i), 128, async (i) => {
      try {
        peers.push(await connectWorker(broker.wsUrl, owner.key, { name: `idle-${i}` }, { localAddress: sourceAddress(i) }))
      } catch {
        failures++
      }
      if (i % 250 === 0) ctx.progress(`broker: ${peers.length}/${target} workers ready (${failures} failed), RSS ${rssKb(broker.pid)} KB`)
    })
    brokerHeld = await holdThroughHeartbeats(ctx, broker, peers, heartbeatSeconds * size(ctx.mode, 2.2, 1.2, 1.2), 'broker')
    brokerKb = (await broker.settledRss() - before) / Math.max(brokerHeld, 1)
  } finally {
    for (const peer of peers) peer.close()
    await broker.stop()
  }

  const raw = await startRawChild({ heartbeatSeconds })
  let rawHeld = 0
  let rawKb = Number.NaN
  const rawPeers: Peer[] = []
  try {
    const before = await raw.settledRss()
    await pool(Array.from({ length: target }, (_, i) => i), 128, async (i) => {
      rawPeers.push(await connect(`${raw.wsUrl}/idle`, { localAddress: sourceAddress(i) }))
      if (i % 250 === 0) ctx.progress(`raw ws: ${rawPeers.length}/${target} connections, RSS ${rssKb(raw.pid)} KB`)
    })
    rawHeld = await holdThroughHeartbeats(ctx, raw, rawPeers, heartbeatSeconds * size(ctx.mode, 2.2, 1.2, 1.2), 'raw ws')
    rawKb = (await raw.settledRss() - before) / Math.max(rawHeld, 1)
  } finally {
    for (const peer of rawPeers) peer.close()
    await raw.stop()
  }

  ctx.record('idle_workers_held', figure(brokerHeld, 'workers', rawHeld))
  ctx.record('rss_kb_per_worker', figure(brokerKb, 'KB', rawKb))
}

/** Waits `seconds` (a whole number of heartbeats and a bit: pings answered or missed), then counts the connections still open. */
async function holdThroughHeartbeats(ctx: BenchContext, child: Child, peers: Peer[], seconds: number, what: string): Promise<number> {
  const until = performance.now() + seconds * 1000
  while (performance.now() < until) {
    ctx.progress(`${what}: holding ${peers.length} idle connections through heartbeats, RSS ${rssKb(child.pid)} KB`)
    await sleep(250)
  }
  return peers.filter((p) => p.ws.readyState === p.ws.OPEN).length
}
