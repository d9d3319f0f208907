/**
 * The simulator's report against the broker's own records: a tiny scenario runs against a real
 * broker (private redis-server, temp SQLite), and the figures are checked against the request
 * rows and ledger postings the run read back, and the HTML against those figures.
 */
import t, { type Test } from 'tap'
import { computeFigures, quantile } from '../scripts/simulate/figures.js'
import { renderReport } from '../scripts/simulate/report.js'
import { runPolicy } from '../scripts/simulate/run.js'
import { parseScenario, ScenarioError } from '../scripts/simulate/scenario.js'
import { UNFUNDED_ID } from '../src/economy/anonymous.js'
import type { PolicyFigures } from '../scripts/simulate/figures.js'
import type { RunRecord } from '../scripts/simulate/run.js'
import { redisServerAvailable, REDIS_INSTALL_HINT } from '../src/redis/redis-server.js'

const tiny = parseScenario({
  name: 'tiny', durationSeconds: 3, drainSeconds: 5, bucketSeconds: 1, seed: 3,
  env: { HEARTBEAT_SECONDS: '0.5', KUDOS_UPTIME_PERIOD_SECONDS: '1', KUDOS_UPTIME_FLUSH_SECONDS: '0.5' },
  policies: [{ name: 'strict', env: {} }],
  requesters: [
    { name: 'rich', users: 1, balance: 100, ratePerSecond: 3, promptChars: 40, maxLength: 20 },
    { name: 'indebted', users: 2, balance: -50, ratePerSecond: 3, promptChars: 40, maxLength: 20 },
    { name: 'anonymous', anonymous: true, balance: -10, ratePerSecond: 2, promptChars: 40, maxLength: 20 },
  ],
  workers: [{ name: 'w1', owner: 'rich-1', model: 'koboldcpp/Llama-3-8B', tokensPerSecond: 100, threads: 1 }],
}, 'tiny')

const kudos = (milli: number) => Math.round(milli) / 1000

/** The credit-line figures against the postings: every kudo a class paid went to a worker's owner or to horde:unfunded. */
function checkCreditFlows(t: Test, run: RunRecord, figures: PolicyFigures): void {
  const unfunded = run.postings.filter((p) => p.userId === UNFUNDED_ID)
  t.ok(unfunded.every((p) => p.category === 'unfunded' && p.kind === 'generation'), 'the system account has only unfunded generation postings')
  t.equal(figures.totals.unfunded, kudos(unfunded.reduce((s, p) => s + p.amount, 0)), 'unfunded total = the system account\'s postings')
  t.equal(Math.round(figures.unfunded.reduce((s, v) => s + v, 0) * 1000), Math.round(figures.totals.unfunded * 1000), 'unfunded buckets add up to the total')
  t.equal(Math.round(figures.totals.generationPaid * 1000), Math.round((figures.totals.generationEarned + figures.totals.unfunded) * 1000), 'paid = earned + unfunded')
  for (const cls of tiny.requesters) {
    const users = Object.keys(run.classOf).map(Number).filter((id) => run.classOf[id] === cls.name)
    const from = (category: string) => run.postings.filter((p) => p.category === category && p.counterpartyId !== null && users.includes(p.counterpartyId)).reduce((s, p) => s + p.amount, 0)
    const c = figures.classes[cls.name]
    t.equal(c.minted, kudos(run.postings.filter((p) => users.includes(p.userId) && p.category === 'uptime').reduce((s, p) => s + p.amount, 0)), `${cls.name}: minted = its uptime postings`)
    t.equal(c.unfunded, kudos(from('unfunded')), `${cls.name}: unfunded = the system account's postings against it`)
    t.equal(Math.round(c.paid * 1000), from('generation') + from('unfunded'), `${cls.name}: paid = what its workers earned from it + unfunded`)
  }
}

t.test('scenario files are checked with errors that name the field', async (t) => {
  t.throws(() => parseScenario({ ...tiny, requesters: [{ ...tiny.requesters[0], rate: 1 }] }, 'x.json'), new ScenarioError('x.json: $.requesters[0].rate: unknown field (allowed: name, users, anonymous, balance, ratePerSecond, promptChars, maxLength)'))
  t.throws(() => parseScenario({ ...tiny, durationSeconds: -1 }, 'x.json'), /x\.json: \$\.durationSeconds: expected 1\.\.600, got -1/)
  t.throws(() => parseScenario({ ...tiny, policies: [] }, 'x.json'), /\$\.policies: expected a non-empty array/)
  t.throws(() => parseScenario({ ...tiny, env: { A: 1 } }, 'x.json'), /\$\.env\.A: expected a string/)
})

t.test('the report\'s figures are the ledger\'s and the request table\'s', async (t) => {
  if (!redisServerAvailable()) throw new Error(`This test needs redis-server. ${REDIS_INSTALL_HINT}`)
  const run = await runPolicy(tiny, tiny.policies[0])
  const figures = computeFigures(tiny, run)
  t.ok(run.audit.ok, `ledger audit clean: ${run.audit.problems.join('; ')}`)
  t.ok(run.requests.length > 5, 'requests were recorded')
  t.equal(figures.totals.requests, run.requests.length, 'requests counted = rows read back')
  const classRows = (name: string) => run.requests.filter((r) => run.classOf[r.userId] === name)
  let counted = 0
  for (const cls of tiny.requesters) {
    const c = figures.classes[cls.name]
    const rows = classRows(cls.name)
    counted += c.requests
    t.equal(c.requests, rows.length, `${cls.name}: requests = its rows`)
    t.equal(c.done, rows.filter((r) => r.state === 'done').length, `${cls.name}: done = rows in state done`)
    const users = Object.keys(run.classOf).map(Number).filter((id) => run.classOf[id] === cls.name)
    const spent = run.postings.filter((p) => users.includes(p.userId) && p.kind === 'generation' && p.category === 'spent')
    const spentSum = -spent.reduce((s, p) => s + p.amount, 0) / 1000
    t.equal(c.paid, Math.round(spentSum * 1000) / 1000, `${cls.name}: paid = sum of its generation postings`)
    t.equal(Math.round(spentSum * 1000), rows.reduce((s, r) => s + (r.kudos ?? 0), 0), `${cls.name}: paid = the kudos its rows record`)
    const waits = rows.map((r) => ((r.finishedAt ?? run.endedAt) - r.createdAt) / 1000).sort((a, b) => a - b)
    t.equal(c.waitMax, Math.round(waits[waits.length - 1] * 1000) / 1000, `${cls.name}: longest wait from the stored times`)
    t.equal(c.waitP50, Math.round(quantile(waits, 0.5) * 1000) / 1000, `${cls.name}: median wait from the stored times`)
    t.ok(c.waitP50 > 0, `${cls.name}: waits are positive`)
  }
  t.equal(counted, run.requests.length, 'every row belongs to a class')
  const uptime = run.postings.filter((p) => p.kind === 'uptime').reduce((s, p) => s + p.amount, 0) / 1000
  t.ok(uptime > 0, 'the worker earned uptime')
  t.equal(figures.totals.minted, Math.round(uptime * 1000) / 1000, 'minted = the uptime postings')
  t.equal(figures.classes.rich.minted, figures.totals.minted, 'the only worker is a rich user\'s: its class minted it all')
  t.ok(figures.debt.indebted.every((d) => d <= -100), 'the indebted class stays at least as deep as it began')
  checkCreditFlows(t, run, figures)
  // Default credit lines: a username account's debt funds workers down to -25, Anonymous's without limit.
  t.ok(figures.classes.indebted.unfunded > 0, 'the indebted class (-50, line 25) paid past its line')
  t.equal(figures.classes.anonymous.unfunded, 0, 'Anonymous has no credit line by default: all its payments fund the worker')
  const html = renderReport(tiny, [figures])
  t.match(html, /uPlot/, 'uPlot is inlined')
  t.notMatch(html, /<script[^>]+src=/, 'no external script')
  const embedded = JSON.parse(html.match(/<script id="figures" type="application\/json">(.*?)<\/script>/s)![1].replace(/\\u003c/g, '<'))
  t.same(embedded.figures[0].classes, figures.classes, 'the report embeds these figures')
})

t.test('a credit-line policy reaches the broker: with KUDOS_ANON_CREDIT=0 Anonymous\'s payments go to horde:unfunded', async (t) => {
  if (!redisServerAvailable()) throw new Error(`This test needs redis-server. ${REDIS_INSTALL_HINT}`)
  const run = await runPolicy(tiny, { name: 'tight', env: { KUDOS_ANON_CREDIT: '0', KUDOS_USER_CREDIT: 'none' } })
  const figures = computeFigures(tiny, run)
  t.ok(run.audit.ok, `ledger audit clean: ${run.audit.problems.join('; ')}`)
  checkCreditFlows(t, run, figures)
  t.ok(figures.classes.anonymous.paid > 0, 'Anonymous was served and charged')
  t.equal(figures.classes.anonymous.unfunded, figures.classes.anonymous.paid, 'Anonymous (-10, line 0) funded nothing: all it paid went to horde:unfunded')
  t.equal(figures.classes.indebted.unfunded, 0, 'no user credit line: the indebted class funded its worker in full')
  t.equal(figures.classes.rich.unfunded, 0, 'a positive balance never reaches a line')
})

t.test('a user with more arrivals than one socket may watch gets more sockets: none refused', async (t) => {
  if (!redisServerAvailable()) throw new Error(`This test needs redis-server. ${REDIS_INSTALL_HINT}`)
  const flood = parseScenario({
    ...tiny, name: 'flood', durationSeconds: 2, drainSeconds: 1,
    requesters: [{ name: 'anonymous', anonymous: true, balance: 0, ratePerSecond: 80, promptChars: 40, maxLength: 20 }],
    workers: [{ name: 'w1', owner: 'owner', model: 'koboldcpp/Llama-3-8B', tokensPerSecond: 20, threads: 1 }],
  }, 'flood')
  const run = await runPolicy(flood, flood.policies[0])
  const figures = computeFigures(flood, run)
  t.ok(figures.classes.anonymous.requests > 120, `more than ${120} requests from one account (${figures.classes.anonymous.requests})`)
  t.same(run.refusedCodes, {}, 'no submission refused')
  t.ok(figures.classes.anonymous.unfinished > 0, 'most are still waiting at the end: one socket would have watched more than 100')
})
