import t from 'tap'
import { Coalescer } from '../src/util/coalescer.js'

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

t.test('a burst during a run folds into one more run, after it', async (t) => {
  const coalescer = new Coalescer<string>({ onError: (error) => { throw error } })
  const first = gate()
  const log: string[] = []
  let runs = 0
  const task = async () => {
    const n = ++runs
    log.push(`start ${n}`)
    if (n === 1) await first.promise
    log.push(`end ${n}`)
  }
  const running = coalescer.run('a', task)
  t.ok(coalescer.isRunning('a'))
  for (let i = 0; i < 5; i++) t.equal(coalescer.run('a', task), running, 'callers get the run in progress')
  first.open()
  await running
  t.same(log, ['start 1', 'end 1', 'start 2', 'end 2'], 'five requests, one re-run, never overlapping')
  t.notOk(coalescer.isRunning('a'))
  await coalescer.run('a', task)
  t.equal(runs, 3, 'an idle key runs at once')
})

t.test('keys run side by side and idle() waits for all, re-runs included', async (t) => {
  const coalescer = new Coalescer<number>({ onError: (error) => { throw error } })
  const gates = [gate(), gate()]
  const done: number[] = []
  const task = (key: number) => async () => {
    await gates[key].promise
    done.push(key)
  }
  void coalescer.run(0, task(0))
  void coalescer.run(1, task(1))
  void coalescer.run(1, task(1))
  t.equal(coalescer.size, 2)
  let idle = false
  const waiting = coalescer.idle().then(() => { idle = true })
  gates[1].open()
  await new Promise((r) => setImmediate(r))
  t.notOk(idle, 'not idle while key 0 runs')
  gates[0].open()
  await waiting
  t.same(done.sort(), [0, 1, 1], 'key 1 ran twice, key 0 once')
  t.equal(coalescer.size, 0)
})

t.test('a run that throws is reported, and a re-run asked for still happens', async (t) => {
  const errors: unknown[] = []
  const coalescer = new Coalescer<string>({ onError: (error) => errors.push(error) })
  const first = gate()
  let runs = 0
  const task = async () => {
    runs++
    if (runs === 1) {
      await first.promise
      throw new Error('boom')
    }
  }
  const running = coalescer.run('k', task)
  void coalescer.run('k', task)
  first.open()
  await running
  t.equal(runs, 2, 'the re-run ran after the failure')
  t.equal(errors.length, 1)
  t.match(String(errors[0]), /boom/)
  t.notOk(coalescer.isRunning('k'))
})

t.test('join shares the run in progress and its result, without a re-run', async (t) => {
  const coalescer = new Coalescer<string>({ onError: (error) => { throw error } })
  const first = gate()
  let runs = 0
  const task = async () => {
    runs++
    await first.promise
    return runs * 10
  }
  const a = coalescer.join('reconcile', task)
  const b = coalescer.join('reconcile', task)
  t.equal(a, b, 'the same promise')
  first.open()
  t.same(await Promise.all([a, b]), [10, 10])
  t.equal(runs, 1, 'no re-run after it')
  t.notOk(coalescer.isRunning('reconcile'))
  t.equal(await coalescer.join('reconcile', task), 20, 'the next request starts a new run')

  const failing = coalescer.join('broken', async () => { throw new Error('no redis') })
  await coalescer.idle()
  await t.rejects(failing, /no redis/, 'an error goes to the callers')
  t.notOk(coalescer.isRunning('broken'))
})
