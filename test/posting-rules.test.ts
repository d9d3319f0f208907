import t from 'tap'
import { checkEntry, mintedBy, type EntryInput } from '../src/economy/posting-rules.js'

const generation = (spent: number, earned: number): EntryInput => ({
  kind: 'generation', ref: 'req-1',
  postings: [{ userId: 1, amount: spent, category: 'spent' }, { userId: 2, amount: earned, category: 'generation' }],
})

t.test('entries that follow the rules pass, and only uptime and awards mint', async (t) => {
  const sound: Array<[string, EntryInput, number]> = [
    ['a generation settlement', generation(-1500, 1500), 0],
    ['a transfer', { kind: 'transfer', ref: '1:k', postings: [{ userId: 1, amount: -5, category: 'sent' }, { userId: 2, amount: 5, category: 'received' }] }, 0],
    ['an uptime credit', { kind: 'uptime', ref: '7:b1', postings: [{ userId: 2, amount: 157_860, category: 'uptime' }] }, 157_860],
    ['an award without a ref', { kind: 'award', postings: [{ userId: 2, amount: 1000, category: 'awarded' }] }, 1000],
  ]
  for (const [name, entry, minted] of sound) {
    t.doesNotThrow(() => checkEntry(entry), name)
    t.equal(mintedBy(entry), minted, `${name} mints ${minted}`)
  }
})

t.test('entries that break the rules are refused before anything is written', async (t) => {
  const broken: Array<[string, EntryInput, RegExp]> = [
    ['an unbalanced generation', generation(-1500, 1000), /does not balance/],
    ['a generation that credits the payer', generation(1500, -1500), /must be negative/],
    ['a category the kind does not post to', { kind: 'transfer', ref: 'x', postings: [{ userId: 1, amount: -5, category: 'spent' }, { userId: 2, amount: 5, category: 'received' }] }, /cannot post to spent/],
    ['a negative award', { kind: 'award', postings: [{ userId: 2, amount: -1, category: 'awarded' }] }, /must be positive/],
    ['a fractional amount', { kind: 'award', postings: [{ userId: 2, amount: 0.5, category: 'awarded' }] }, /not an integer/],
    ['no postings', { kind: 'award', postings: [] }, /no postings/],
    ['a settlement without a ref', { ...generation(-1, 1), ref: null }, /needs a ref/],
    ['an uptime credit without a ref', { kind: 'uptime', postings: [{ userId: 2, amount: 1, category: 'uptime' }] }, /needs a ref/],
    ['an unknown kind', { kind: 'gift' as never, ref: 'x', postings: [{ userId: 2, amount: 1, category: 'awarded' }] }, /unknown ledger entry kind/],
  ]
  for (const [name, entry, message] of broken) t.throws(() => checkEntry(entry), message, name)
})
