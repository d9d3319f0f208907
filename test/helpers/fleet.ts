/** Reference workers (the real WorkerClient, demo backend) and REST submissions, for fault tests. */
import { WorkerClient } from '../../src/clients/worker-client.js'
import { createDemoBackend } from '../../src/clients/backends/demo.js'
import { api, type TestLike } from './harness.js'

export interface Fleet {
  workers: WorkerClient[]
  /** Jobs pushed to the fleet so far (first dispatches and re-dispatches). */
  readonly jobs: number
  /** Times each request was pushed to a worker, by prompt (workers know jobs by per-attempt ids; submitMany's prompts are unique). */
  readonly dispatches: Map<string, number>
}

/** Starts `count` reference workers on the demo backend; they reconnect by themselves. */
export async function startFleet(t: TestLike, url: string, key: string, options: { count: number; threads: number; delayMs: number; model?: string }): Promise<Fleet> {
  let jobs = 0
  const dispatches = new Map<string, number>()
  const workers: WorkerClient[] = []
  for (let i = 0; i < options.count; i++) {
    const worker = new WorkerClient({
      url, key, name: `w${i}`, models: [options.model ?? 'demo/tiny'], maxLength: 512, maxContextLength: 4096,
      threads: options.threads, backend: createDemoBackend({ delayMs: options.delayMs }),
    })
    worker.on('error', () => { /* refused or dropped sockets while a fault lasts: it reconnects */ })
    worker.on('job', (_id, job) => {
      jobs++
      dispatches.set(job.prompt, (dispatches.get(job.prompt) ?? 0) + 1)
    })
    workers.push(worker)
  }
  t.teardown(() => Promise.all(workers.map((w) => w.stop())))
  await Promise.all(workers.map((w) => w.start()))
  return { workers, dispatches, get jobs() { return jobs } }
}

/**
 * Submits `count` requests over REST, `parallel` at a time; returns the ids of those the
 * broker accepted (202) and the answers it refused.
 */
export async function submitMany(url: string, key: string, count: number, options: { prefix: string; words: number; parallel?: number; model?: string }): Promise<{ ids: string[]; refused: string[] }> {
  const ids: string[] = []
  const refused: string[] = []
  const parallel = options.parallel ?? 10
  for (let i = 0; i < count; i += parallel) {
    const answers = await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, (_, j) =>
      api(url, 'POST', '/v1/generate', { key, body: { prompt: `${options.prefix} ${i + j}`, models: [options.model ?? 'demo/tiny'], max_length: options.words } })
        .catch((error: Error) => ({ status: 0, body: { error: error.message } }))))
    for (const answer of answers) {
      if (answer.status === 202) ids.push(answer.body.id)
      else refused.push(`${answer.status} ${JSON.stringify(answer.body)}`)
    }
  }
  return { ids, refused }
}
