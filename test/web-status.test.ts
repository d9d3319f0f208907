import t from 'tap'
import { WebSocket } from 'ws'
import { createStatusFeed } from '../src/web/status-feed.js'
import type { StatusSnapshot } from '../src/web/status.js'
import { grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

function collect(url: string): { frames: any[]; socket: WebSocket; next(n: number, timeoutMs?: number): Promise<any[]> } {
  const frames: any[] = []
  const socket = new WebSocket(url)
  socket.on('message', (data) => frames.push(JSON.parse(String(data))))
  return {
    frames,
    socket,
    async next(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs
      while (frames.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${frames.length} of ${n} frames`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      return frames
    },
  }
}

t.test('/v1/status/live pushes a snapshot on connect and then on every interval', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis, env: { STATUS_PUSH_SECONDS: '0.2' } })
  const rich = await registerUser(url, 'rich')
  const poor = await registerUser(url, 'poor')
  await grant(broker, rich.id, 50)
  await grant(broker, poor.id, 5)

  const live = collect(`${wsUrl}/v1/status/live`)
  const [first] = await live.next(1)
  t.equal(first.type, 'status')
  t.same(first.status, {
    workers: [], waiting: {}, throughput: { jobs_per_min: 0, tokens_per_min: 0 },
    top: [{ username: 'rich', kudos: 50 }, { username: 'poor', kudos: 5 }],
  }, 'the default source: no pipeline yet, leaderboard from the balances (no Anonymous)')

  await grant(broker, poor.id, 100)
  const started = Date.now()
  await live.next(3)
  t.ok(Date.now() - started < 2000, 'pushes keep coming at the interval')
  t.same(live.frames.at(-1).status.top[0], { username: 'poor', kudos: 105 }, 'and follow the balances')

  live.socket.send(JSON.stringify({ type: 'subscribe' }))
  await new Promise((resolve) => setTimeout(resolve, 300))
  const error = live.frames.find((f) => f.type === 'error')
  t.equal(error?.code, 'unknown_type', 'a command gets a coded error, not silence')
  live.socket.close()
})

t.test('the status page renders the snapshot, escaped', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const snapshot: StatusSnapshot = {
    workers: [{ name: '<b>w1</b>', owner: 'alice', models: ['demo/tiny', 'x<y'], jobs: 7, uptime_s: 3700 }],
    waiting: { 'demo/tiny': 3 },
    throughput: { jobs_per_min: 12, tokens_per_min: 3400 },
    top: [{ username: 'alice', kudos: 1234.5 }],
  }
  // The port is what the pipeline will fill: swap the source and the page follows.
  Object.assign(broker.services.status, { snapshot: () => snapshot })
  const page = await fetch(url + '/').then((r) => r.text())
  t.match(page, /&lt;b&gt;w1&lt;\/b&gt;/, 'worker names are escaped')
  t.notMatch(page, /<b>w1<\/b>/)
  t.match(page, /x&lt;y/)
  t.match(page, /1h 1m/)
  t.match(page, /1,234\.5/)
  t.match(page, /<script src="\/static\/status.js" defer><\/script>/)
  t.notMatch(page, /<script>/, 'no inline script')
  const js = await fetch(url + '/static/status.js')
  t.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8')
  const etag = js.headers.get('etag')!
  const cached = await fetch(url + '/static/status.js', { headers: { 'if-none-match': etag } })
  t.equal(cached.status, 304)
  const missing = await fetch(url + '/static/..%2Fhtml.ts')
  t.equal(missing.status, 404)
})

t.test('the feed takes one snapshot per tick for all subscribers and stops when nobody listens', async (t) => {
  let taken = 0
  const feed = createStatusFeed({ snapshot: async () => { taken++; return { workers: [], waiting: {}, throughput: { jobs_per_min: 0, tokens_per_min: 0 }, top: [] } } }, 30)
  const a: string[] = []
  const b: string[] = []
  const offA = feed.subscribe((f) => a.push(f))
  const offB = feed.subscribe((f) => b.push(f))
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(a.length >= 2)
  t.equal(a.length, b.length)
  t.equal(taken, a.length, 'one snapshot per tick, shared')
  offA()
  offB()
  t.equal(feed.size, 0)
  const after = taken
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(taken, after, 'the timer stopped')
})
