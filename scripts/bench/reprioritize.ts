/**
 * Re-prioritization under a deep queue, through the broker's own code (createBroker in the
 * bench process; no sockets are involved). One user has one waiting request; other users'
 * requests fill the same class queue to 1k, then 100k. Each sample is a ledger entry that
 * moves the user's balance across priority buckets; timed from the entry's commit (the
 * change event fires synchronously inside it) until the reprioritizer is idle, that is
 * until the request sits at its new priority in Redis. Baseline: BullMQ's changePriority
 * alone on a job of the same queue.
 */
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { createBroker } from '../../src/broker.js'
import { loadConfig } from '../../src/config.js'
import { toMilli } from '../../src/economy/amounts.js'
import { figure, percentile, size, type BenchContext } from './common.js'
import { BENCH_MODEL } from './peer.js'

export async function runReprioritize(ctx: BenchContext): Promise<void> {
  const samples = size(ctx.mode, 500, 100, 20)
  // --quick and --tiny fill less (20k, 2k) to stay within their budgets; the figure keeps its name.
  const depths = size(ctx.mode, [1000, 100_000], [1000, 20_000], [200, 2000])
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATA_DIR: `${ctx.dir}/reprioritize`, REDIS_URL: ctx.redisUrl, REDIS_PREFIX: 'rep',
    LOG_LEVEL: 'silent', SUBMITS_PER_SECOND: '1000000', MAX_ACTIVE_PER_USER: '1000000',
  })
  const broker = await createBroker(config)
  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null })
  let queue: Queue | undefined
  try {
    const { accounts, ledger } = broker.services
    const target = await accounts.register('rep-target')
    const other = await accounts.register('rep-other')
    const principal = await accounts.authenticate(target.key.key)
    await ledger.award({ userId: other.user.id, amount: toMilli(1_000_000_000), memo: 'bench set-up' })
    const submitted = await broker.core.generations.submit({ principal, address: '127.0.0.1' }, { prompt: 'Once upon a time', models: [BENCH_MODEL], max_length: 80 })
    queue = new Queue(submitted.cls.queue, { connection, prefix: `${config.redisPrefix}:bull` })
    let filled = 1
    let serial = 0

    for (const depth of depths) {
      while (filled < depth) {
        const batch = Math.min(1000, depth - filled)
        // Other users' requests, spread over priorities around the target's.
        await queue.addBulk(Array.from({ length: batch }, (_, j) => ({
          name: 'generate',
          data: { request: `filler-${filled + j}` },
          opts: { jobId: `filler-${filled + j}`, priority: 1_046_000 + ((filled + j) % 5000), removeOnComplete: true },
        })))
        filled += batch
        if (filled % 10_000 === 0 || filled === depth) ctx.progress(`filling the queue: ${filled.toLocaleString('en-US')}/${depth.toLocaleString('en-US')} waiting`)
      }
      const waiting = await queue.getPrioritizedCount()
      if (waiting < depth) throw new Error(`expected ${depth} waiting, found ${waiting}`)

      ctx.progress(`${samples} balance changes and as many BullMQ changePriority calls, alternating, with ${depth.toLocaleString('en-US')} waiting`)
      const backend = queue.getBackend()
      const viaBroker: number[] = []
      const bull: number[] = []
      // Alternating samples, so that both sides see the same machine.
      for (let i = 0; i < samples + 10; i++) {
        // 1000 kudos there and back: across buckets every time (a bucket is ~0.27% of a balance).
        const amount = toMilli(1000)
        const up = i % 2 === 0
        // A balanced transfer-kind entry both ways: no transfer row, only the balance change that moves the queue.
        await ledger.post({
          kind: 'transfer', ref: `rep-${++serial}`, memo: 'bench',
          postings: [
            { userId: target.user.id, amount: up ? amount : -amount, category: up ? 'received' : 'sent', counterpartyId: other.user.id },
            { userId: other.user.id, amount: up ? -amount : amount, category: up ? 'sent' : 'received', counterpartyId: target.user.id },
          ],
        })
        let start = performance.now()
        await broker.core.reprioritizer.idle()
        if (i >= 10) viaBroker.push(performance.now() - start)
        start = performance.now()
        await backend.changePriority('filler-1', up ? 1_047_000 : 1_048_000)
        if (i >= 10) bull.push(performance.now() - start)
      }
      const name = depth === depths[0] ? 'reprioritize_p50_ms_1k' : 'reprioritize_p50_ms_100k'
      ctx.record(name, figure(percentile(viaBroker, 50), 'ms', percentile(bull, 50)))
    }
  } finally {
    await queue?.obliterate({ force: true }).catch(() => {})
    await queue?.close()
    connection.disconnect()
    await broker.close()
  }
}
