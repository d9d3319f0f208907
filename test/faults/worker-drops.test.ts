/**
 * Fault: workers drop mid-job at random points, over many seeded runs. Each job's fate is
 * drawn from a seeded PRNG keyed by (run, job, attempt), so a failing seed replays the same
 * schedule whatever the interleaving: up to three attempts are abandoned (socket destroyed,
 * closed cleanly, or a `fail` frame) after a random number of chunks, or the worker sends
 * `done` and vanishes at once. A fresh worker takes the place of each one that left. Every
 * job must finish exactly once: one `done` frame to its watcher, one generation entry, and
 * the text of the attempt that finished.
 */
import t from 'tap'
import { checkOutcome, generationEntries, prng, writeFigures } from '../helpers/faults.js'
import { registerUser, sleep, startBroker, startTestRedis, eventually } from '../helpers/harness.js'
import { client, PLAUSIBLE_MS, rawWorker, submit } from '../helpers/pipeline.js'
import type { Peer } from '../helpers/ws.js'

const RUNS = 20
const JOBS = 4
const LIVE_WORKERS = 2
const MODES = ['terminate', 'close', 'fail', 'done-then-terminate'] as const
type Mode = (typeof MODES)[number]

/** What happens to one attempt: run to the end, or stop after `chunks` chunks in some way. */
function fate(seed: number, job: number, attempt: number): { drop: boolean; chunks: number; mode: Mode; words: number } {
  const perJob = prng(seed * 7919 + job)
  const words = perJob.int(2, 8)
  const drops = perJob.int(0, 3)
  const rng = prng(seed * 104729 + job * 101 + attempt)
  return { drop: attempt <= drops, chunks: rng.int(0, words), mode: rng.pick(MODES), words }
}

t.test(`workers dropping mid-job at random points, ${RUNS} seeded runs x ${JOBS} jobs: each finishes exactly once`, async (t) => {
  const started = Date.now()
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url, database } = await startBroker(t, {
    redis, env: { JOB_MAX_ATTEMPTS: '20', MAX_ACTIVE_PER_USER: '1000', SUBMITS_PER_SECOND: '10000', CONNECTIONS_PER_IP: '10000', HEARTBEAT_SECONDS: '5' },
  })
  const owner = await registerUser(url, 'owner')
  const requester = await registerUser(url, 'requester')
  const watcher = await client(wsUrl, requester.key)
  t.teardown(() => watcher.close())

  const allIds: string[] = []
  let faults = 0
  let workerSerial = 0
  const open = new Set<Peer>()
  t.teardown(() => { for (const peer of open) peer.ws.terminate() })

  for (let seed = 1; seed <= RUNS; seed++) {
    const ids: string[] = []
    for (let j = 0; j < JOBS; j++) ids.push(await submit(watcher, { prompt: `run ${seed} job ${j}`, max_length: fate(seed, j, 1).words }))
    allIds.push(...ids)
    /** The text each request's finishing attempt sent. */
    const finishedWith = new Map<string, string>()
    let stopping = false

    /** One worker: serves jobs until it is told to drop one, then leaves (and is replaced). */
    const serveAsWorker = async (): Promise<void> => {
      const peer = await rawWorker(wsUrl, owner.key, { name: `r${seed}-w${++workerSerial}`, threads: 1 })
      open.add(peer)
      if (stopping) peer.close() // came up after its run ended: the next run starts clean
      try {
        for (;;) {
          let job: any
          try {
            job = await peer.next('job', 60_000)
          } catch {
            return // closed by the run's end
          }
          const index = ids.indexOf(job.forRequest)
          if (index < 0) throw new Error(`job ${job.job} is not from run ${seed}`)
          const f = fate(seed, index, job.attempt)
          const pieces = Array.from({ length: f.words }, (_, i) => `a${job.attempt}w${i} `)
          if (!f.drop) {
            pieces.forEach((text, seq) => peer.send({ type: 'chunk', job: job.job, seq, text }))
            await sleep(PLAUSIBLE_MS)
            peer.send({ type: 'done', job: job.job, chunks: pieces.length })
            finishedWith.set(job.forRequest, pieces.join(''))
            continue
          }
          faults++
          pieces.slice(0, f.chunks).forEach((text, seq) => peer.send({ type: 'chunk', job: job.job, seq, text }))
          switch (f.mode) {
            case 'fail':
              peer.send({ type: 'fail', job: job.job, reason: 'injected' })
              continue // the worker stays; the job goes back to the queue
            case 'done-then-terminate':
              pieces.slice(f.chunks).forEach((text, seq) => peer.send({ type: 'chunk', job: job.job, seq: seq + f.chunks, text }))
              await sleep(PLAUSIBLE_MS)
              peer.send({ type: 'done', job: job.job, chunks: pieces.length })
              finishedWith.set(job.forRequest, pieces.join(''))
              peer.ws.terminate()
              break
            case 'close':
              peer.ws.close(1000, 'leaving')
              break
            case 'terminate':
              peer.ws.terminate()
              break
          }
          open.delete(peer)
          if (!stopping) spawn() // a new worker takes over
          return
        }
      } finally {
        open.delete(peer)
      }
    }

    const tasks: Array<Promise<void>> = []
    const spawn = () => { tasks.push(serveAsWorker()) }
    for (let i = 0; i < LIVE_WORKERS; i++) spawn()
    // Each request ends with exactly one final frame on the watching socket.
    const finals = (await eventually(() => {
      const frames = watcher.frames.filter((f) => ['done', 'failed', 'cancelled'].includes(f.type) && ids.includes(f.request))
      return frames.length >= ids.length ? frames : undefined
    }, 60_000, `run ${seed}: every job to end`))!
    stopping = true
    for (const peer of [...open]) peer.close()
    for (let settled = 0; settled < tasks.length;) {
      settled = tasks.length
      await Promise.all(tasks)
    }
    for (const id of ids) {
      const mine = finals.filter((f) => f.request === id)
      t.equal(mine.length, 1, `run ${seed}: one final frame for ${id}`)
      t.equal(mine[0]?.type, 'done', `run ${seed}: ${id} is done`)
      t.equal(mine[0]?.text, finishedWith.get(id), `run ${seed}: ${id} carries the finishing attempt's text`)
    }
    const entries = await generationEntries(database)
    t.ok(ids.every((id) => entries.get(id) === 1), `run ${seed}: one generation entry per request`)
  }

  const outcome = await checkOutcome(t, { url, key: requester.key, ids: allIds, database })
  t.equal(outcome.done, allIds.length)
  // Late frames: no second final frame arrived after the runs.
  const finalsPerRequest = new Map<string, number>()
  for (const f of watcher.frames) if (f.type === 'done') finalsPerRequest.set(f.request, (finalsPerRequest.get(f.request) ?? 0) + 1)
  t.ok([...finalsPerRequest.values()].every((n) => n === 1), 'no request was announced done twice')
  t.equal(broker.core.runner.size, 0, 'nothing left running')
  writeFigures({
    name: 'worker-drops', file: 'test/faults/worker-drops.test.ts',
    injects: `${RUNS} seeded runs x ${JOBS} jobs; attempts dropped (destroy, close, fail, done-then-destroy) after a random number of chunks`,
    faults, ...outcome,
    notes: `${workerSerial} worker sessions for ${allIds.length} jobs`,
    ranAt: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000),
  })
})
