import t from 'tap'
import { decodeScore, encodeScore, MAX_PRIORITY, maxScoreAtOrBetter, maxScoreBetterThan, priorityOfScore, PRIORITY_SPAN } from '../src/queue/score.js'

t.test('scores encode priority then counter, as BullMQ writes them', async (t) => {
  const table: Array<[priority: number, counter: number, score: number]> = [
    [1, 1, 4_294_967_297],
    [1, 0, 4_294_967_296],
    [2, 7, 2 * 4_294_967_296 + 7],
    [1000, 123_456, 1000 * 4_294_967_296 + 123_456],
    // BullMQ keeps the counter modulo 2^32, so it never spills into the priority.
    [3, PRIORITY_SPAN + 5, 3 * 4_294_967_296 + 5],
    [MAX_PRIORITY, PRIORITY_SPAN - 1, MAX_PRIORITY * 4_294_967_296 + 4_294_967_295],
  ]
  for (const [priority, counter, score] of table) {
    t.equal(encodeScore(priority, counter), score, `encode ${priority}/${counter}`)
    t.same(decodeScore(score), { priority, counter: counter % PRIORITY_SPAN }, `decode ${score}`)
    t.same(decodeScore(String(score)), { priority, counter: counter % PRIORITY_SPAN }, 'decodes the string Redis returns')
    t.equal(priorityOfScore(String(score)), priority)
  }
  t.ok(Number.isSafeInteger(encodeScore(MAX_PRIORITY, PRIORITY_SPAN - 1)), 'the highest score is exact as a number')
})

t.test('bounds count the jobs ahead of a priority', async (t) => {
  const table: Array<[priority: number, betterThan: number, atOrBetter: number]> = [
    [1, 4_294_967_295, 2 * 4_294_967_296 - 1],
    [2, 2 * 4_294_967_296 - 1, 3 * 4_294_967_296 - 1],
    [500, 500 * 4_294_967_296 - 1, 501 * 4_294_967_296 - 1],
  ]
  for (const [priority, betterThan, atOrBetter] of table) {
    t.equal(maxScoreBetterThan(priority), betterThan, `better than ${priority}`)
    t.equal(maxScoreAtOrBetter(priority), atOrBetter, `${priority} or better`)
    t.ok(encodeScore(priority - 1, PRIORITY_SPAN - 1) <= maxScoreBetterThan(priority), 'the last job of the priority above is inside')
    t.ok(encodeScore(priority, 0) > maxScoreBetterThan(priority), 'the first job of the priority itself is outside')
    t.ok(encodeScore(priority, PRIORITY_SPAN - 1) <= maxScoreAtOrBetter(priority), 'its last job is inside the or-better bound')
    t.ok(encodeScore(priority + 1, 0) > maxScoreAtOrBetter(priority), 'and the next priority is not')
  }
})
