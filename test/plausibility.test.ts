import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { loadModelRegistry } from '../src/economy/models.js'
import { generationEntry, splitPayment } from '../src/economy/payment.js'
import { billedTokens, contextTokens, defaultTokensPerSecond, suspicious } from '../src/economy/plausibility.js'
import { checkEntry } from '../src/economy/posting-rules.js'
import { UNFUNDED_ID } from '../src/economy/anonymous.js'
import { tempDir } from './helpers/harness.js'

t.test('billed tokens: at most elapsed x speed (rounded down) and max_length; nothing for no text', async (t) => {
  const rows: Array<[chars: number, maxLength: number, elapsedMs: number, tps: number, tokens: number, bounded: boolean]> = [
    [0, 4096, 60_000, 100, 0, false],
    [16_384, 4096, 20, 100, 2, true],
    [16_384, 4096, 9, 100, 0, true],
    [16_384, 4096, 60_000, 100, 4096, false],
    [400, 4096, 1000, 100, 100, false],
    [404, 4096, 1000, 100, 100, true],
    [401, 80, 5000, 538, 80, false],
  ]
  for (const [chars, maxLength, elapsedMs, maxTokensPerSecond, tokens, bounded] of rows) {
    t.match(billedTokens({ chars, maxLength, elapsedMs, maxTokensPerSecond }), { tokens, bounded }, `${chars} chars in ${elapsedMs} ms at ${maxTokensPerSecond}/s`)
  }
  t.equal(defaultTokensPerSecond(70), 100, '70B: 100 tokens/s')
  t.equal(Math.floor(defaultTokensPerSecond(13)), 538)
  t.equal(defaultTokensPerSecond(1), 1000, 'small models: capped')
  t.equal(defaultTokensPerSecond(undefined), 1000)
  t.equal(contextTokens(25_000, { request: 262_144, worker: 262_144, model: 8192 }), 8192)
  t.equal(contextTokens(25_000, { request: 2048, worker: 4096, model: 8192 }), 2048)
  t.equal(contextTokens(0, { request: 2048, worker: 4096, model: 8192 }), 1)
  t.same([suspicious(2, 2), suspicious(3, 3), suspicious(12, 3), suspicious(13, 3)], [false, true, true, false])
})

t.test('payment split: preference pays from positive balance, credit lines fund down to the line', async (t) => {
  const rows: Array<[reward: number, balance: number, preferred: boolean, line: number | null, charged: number, earned: number, unfunded: number]> = [
    [1000, 5000, false, 0, 1000, 1000, 0],
    [1000, 300, true, null, 300, 300, 0],
    [1000, -50, true, null, 0, 0, 0],
    [1000, 0, false, null, 1000, 1000, 0],
    [1000, 0, false, 600, 1000, 600, 400],
    [1000, -600, false, 600, 1000, 0, 1000],
    [1000, -9000, false, 600, 1000, 0, 1000],
    [0, 100, false, 600, 0, 0, 0],
  ]
  for (const [reward, balance, preferred, creditLine, charged, earned, unfunded] of rows) {
    t.same(splitPayment(reward, balance, { preferred, creditLine }), { charged, earned, unfunded }, `${reward} from ${balance}${preferred ? ', preferred' : ''}, line ${creditLine}`)
  }
  const entry = generationEntry('r', 7, 8, { charged: 1000, earned: 600, unfunded: 400 })!
  t.doesNotThrow(() => checkEntry(entry), 'the split entry obeys the posting rules')
  t.same(entry.postings.map((p) => [p.userId, p.amount, p.category]), [[7, -1000, 'spent'], [8, 600, 'generation'], [UNFUNDED_ID, 400, 'unfunded']])
  t.equal(generationEntry('r', 7, 8, { charged: 0, earned: 0, unfunded: 0 }), null, 'nothing moves: no entry')
})

t.test('the registry takes sizes or objects with the bounds, and refuses bad ones', async (t) => {
  const file = (content: unknown) => {
    const name = path.join(tempDir(), 'models.json')
    fs.writeFileSync(name, JSON.stringify(content))
    return name
  }
  const registry = loadModelRegistry(file({ models: { small: 8, big: { size: 70 }, tuned: { size: 13, max_tokens_per_second: 60, max_context_tokens: 16_384 } } }))
  t.same(registry.limitsOf('small'), { maxTokensPerSecond: 875, maxContextTokens: 8192 })
  t.same(registry.limitsOf('big'), { maxTokensPerSecond: 100, maxContextTokens: 8192 })
  t.same(registry.limitsOf('tuned'), { maxTokensPerSecond: 60, maxContextTokens: 16_384 }, 'the operator tunes both')
  t.equal(registry.sizeOf('tuned'), 13)
  t.same(registry.limitsOf('unknown'), { maxTokensPerSecond: 1000, maxContextTokens: 8192 })
  t.throws(() => loadModelRegistry(file({ models: { m: { size: 7, max_tokens_per_second: 0 } } })), /max_tokens_per_second of m must be a positive number/)
  t.throws(() => loadModelRegistry(file({ models: { m: { size: 7, speed: 3 } } })), /unknown field "speed"/)
  t.throws(() => loadModelRegistry(file({ models: { m: { max_context_tokens: 3 } } })), /size of m must be a positive number/)
  t.same(loadModelRegistry(new URL('../config/models.json', import.meta.url).pathname).limitsOf('aphrodite/Llama-3-70B'), { maxTokensPerSecond: 100, maxContextTokens: 8192 })
})
