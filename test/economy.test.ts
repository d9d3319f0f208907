import t from 'tap'
import { contextFactor, countTokens, generationReward, promptTokens, uptimeRewardPerPeriod } from '../src/economy/rewards.js'
import { ageingBonusMilli, PRIORITY_MAX, PRIORITY_PREFERRED, priorityForBalance } from '../src/economy/priority.js'
import { canServe, classOf, modelFor } from '../src/queue/classes.js'

t.test('generation reward matches the reference system\'s published examples', async (t) => {
  // 100 tokens with a 512-token prompt: 8B 10.59, 13B 17.21, 70B 129.75.
  const rows: Array<[number, number]> = [[8, 10.59], [13, 17.21], [70, 129.75]]
  for (const [size, expected] of rows) {
    t.ok(Math.abs(generationReward(100, size, 512) - expected) < 0.03, `${size}B: ${generationReward(100, size, 512).toFixed(3)} ~ ${expected}`)
  }
  t.equal(generationReward(100, undefined, 512), contextFactor(512), 'an unknown model earns the context factor alone')
  t.ok(generationReward(100, undefined, 512) < generationReward(100, 1, 512) * 100, 'the minimum stays small')
  t.equal(contextFactor(1), Math.min(Math.max(1.2 + Math.pow(2.2, Math.log2(1 / 1024)), 0.1), 30))
  t.equal(contextFactor(1e9), 30, 'clamped at 30')
})

t.test('tokens are counted from relayed text: ceil(chars/4), at least 1, at most max_length', async (t) => {
  const rows: Array<[string, number, number]> = [['', 80, 1], ['abc', 80, 1], ['abcd', 80, 1], ['abcde', 80, 2], ['x'.repeat(400), 80, 80], ['x'.repeat(400), 1000, 100]]
  for (const [text, max, tokens] of rows) t.equal(countTokens(text, max), tokens, `${text.length} chars, max ${max}`)
  t.equal(promptTokens('x'.repeat(2048)), 512)
})

t.test('uptime per period matches the reference: 4096 context on 13B = 157.86', async (t) => {
  t.equal(uptimeRewardPerPeriod(4096, 13).toFixed(2), '157.86')
  t.equal(uptimeRewardPerPeriod(4096, 1), 85 * 0.25, 'small models: at least a quarter')
  t.equal(uptimeRewardPerPeriod(4096, undefined), 85 * 0.5, 'unknown models: half the base part')
  t.equal(uptimeRewardPerPeriod(10_000_000, 7), 25 + 15 * 256, 'context capped at 262144')
})

t.test('priority: monotone in balance, within BullMQ\'s range, never 0 or the reserved top', async (t) => {
  const balances = [-1e15, -1e9, -500_000, -1000, 0, 1000, 10_000, 1_000_000, 1e9, 1e15]
  const priorities = balances.map(priorityForBalance)
  for (let i = 1; i < priorities.length; i++) t.ok(priorities[i] < priorities[i - 1], `${balances[i]} mk before ${balances[i - 1]} mk`)
  for (const p of priorities) t.ok(p > PRIORITY_PREFERRED && p <= PRIORITY_MAX && Number.isInteger(p))
  t.equal(priorityForBalance(1_000_000), priorityForBalance(1_001_000), 'changes under a bucket do not move (1000 -> 1001 kudos)')
  t.not(priorityForBalance(1_000_000), priorityForBalance(1_010_000), '1% does')
  t.equal(ageingBonusMilli(25_000, 50), 100_000, '50 kudos per full 10 s')
  t.equal(ageingBonusMilli(25_000, 0), 0, 'off by default')
})

t.test('request classes and worker eligibility', async (t) => {
  const cls = classOf(['b', 'a', 'a'], 100, 2000)
  t.same(cls.models, ['a', 'b'])
  t.equal(cls.lengthTier, 100)
  t.equal(cls.contextTier, 2048)
  t.equal(classOf(['a', 'b'], 90, 1500).queue, classOf(['b', 'a'], 96, 1536).queue, 'same class, same queue')
  const worker = { models: new Set(['b']), maxLength: 100, maxContextLength: 2048 }
  t.ok(canServe(worker, cls))
  t.notOk(canServe({ ...worker, maxLength: 99 }, cls), 'limits must reach the tier')
  t.notOk(canServe({ ...worker, models: new Set(['c']) }, cls), 'one of the models')
  t.ok(canServe({ ...worker, models: new Set(['c']) }, classOf([], 10, 10)), 'any model')
  t.equal(modelFor({ models: ['c', 'b'] }, cls), 'b')
})
