import t from 'tap'
import { parseKudos, toMilli } from '../src/economy/amounts.js'
import { BrokerError } from '../src/errors.js'

t.test('parseKudos accepts positive decimals with at most 3 places', async (t) => {
  const ok: Array<[unknown, number]> = [[1, 1000], [0.001, 1], ['2.5', 2500], [12.345, 12345], ['7', 7000], [1e9, 1e12], [' 3.10 ', 3100]]
  for (const [input, milli] of ok) t.equal(parseKudos(input, 1e9), milli, `${JSON.stringify(input)}`)
})

t.test('parseKudos refuses everything else with a code', async (t) => {
  const bad: Array<[unknown, string]> = [
    [0, 'invalid_amount'], [-1, 'invalid_amount'], [1.0001, 'invalid_amount'], ['1.2345', 'invalid_amount'], [NaN, 'invalid_amount'],
    [Infinity, 'invalid_amount'], ['abc', 'invalid_amount'], ['', 'invalid_amount'], [null, 'invalid_amount'], [{}, 'invalid_amount'],
    ['0x10', 'invalid_amount'], [1e-7, 'invalid_amount'], [1e21, 'amount_too_large'], [1e9 + 1, 'amount_too_large'], ['-0.5', 'invalid_amount'],
  ]
  for (const [input, code] of bad) {
    t.throws(() => parseKudos(input, 1e9), { name: 'BrokerError', code }, `${String(input)} -> ${code}`)
  }
})

t.test('toMilli rounds formula results to whole milli-kudos', async (t) => {
  t.equal(toMilli(10.5904), 10590)
  t.equal(toMilli(10.5905), 10591)
  t.equal(toMilli(-2.0004), -2000)
})
