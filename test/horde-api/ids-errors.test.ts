/** Pure pieces of the v2 door, table-driven: worker UUIDs, `alias#id` names, AI Horde's error codes. */
import t from 'tap'
import { BrokerError } from '../../src/errors.js'
import { toHordeError } from '../../src/horde-api/errors.js'
import { aliasOf, parseUserRef, UUID, workerIdOf, workerUuid } from '../../src/horde-api/ids.js'
import { newRequestId } from '../../src/core/capabilities.js'

t.test('worker ids are UUIDs that read back to the worker row', async (t) => {
  for (const id of [1, 42, 0xfff, 2 ** 40]) {
    const uuid = workerUuid(id)
    t.match(uuid, UUID, `${id} -> ${uuid}`)
    t.equal(workerIdOf(uuid), id)
    t.equal(workerIdOf(uuid.toUpperCase()), id, 'case does not matter')
  }
  for (const other of ['', 'abc', '01a2377d-5a22-7810-b328-be743174e173', '00000000-0000-8000-8000-000000000000']) t.equal(workerIdOf(other), undefined, `${other || 'empty'} names no worker`)
})

t.test('request ids are version-7 UUIDs that sort by time', async (t) => {
  const a = newRequestId(1_700_000_000_000)
  const b = newRequestId(1_700_000_000_001)
  t.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.ok(a < b, 'a later id sorts after')
  t.not(newRequestId(5), newRequestId(5), 'random within one millisecond')
})

t.test('users are named alias#id, and read back by the id', async (t) => {
  t.equal(aliasOf({ id: 7, username: 'alice' }), 'alice#7')
  t.same(parseUserRef('alice#7'), { id: 7 })
  t.same(parseUserRef('odd#name#12'), { id: 12 }, 'the last # decides, as on AI Horde')
  t.same(parseUserRef('alice'), { username: 'alice' })
  t.equal(parseUserRef('alice#'), undefined)
  t.equal(parseUserRef('alice#x'), undefined)
  t.equal(parseUserRef(''), undefined)
})

t.test('broker codes become AI Horde statuses and return codes', async (t) => {
  const cases: Array<[BrokerError, number, string]> = [
    [new BrokerError('unauthorized'), 401, 'InvalidAPIKey'],
    [new BrokerError('unknown_request'), 404, 'RequestNotFound'],
    [new BrokerError('unknown_job'), 404, 'InvalidJobID'],
    [new BrokerError('already_submitted'), 400, 'DuplicateGen'],
    [new BrokerError('worker_name_taken'), 403, 'WrongCredentials'],
    [new BrokerError('too_many_active'), 429, 'TooManyPrompts'],
    [new BrokerError('insufficient_kudos'), 400, 'KudosTransferNotEnough'],
    [new BrokerError('validation_failed', 'empty', { rc: 'MissingPrompt' }), 400, 'MissingPrompt'],
    [new BrokerError('unknown_user', 'x', { rc: 'InvalidTargetUsername', status: 400 }), 400, 'InvalidTargetUsername'],
    [new BrokerError('internal'), 500, 'InternalServerError'],
  ]
  for (const [error, status, rc] of cases) {
    const answer = toHordeError(error)
    t.same({ status: answer.status, rc: answer.body.rc }, { status, rc }, error.code)
    t.same(Object.keys(answer.body).sort(), ['message', 'rc'])
  }
  t.equal(toHordeError(new Error('secret detail')).body.message, 'Internal Server Error', '5xx messages are never shown')
  t.equal(toHordeError(Object.assign(new Error('bad json'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 })).body.rc, 'BadRequest')
})
