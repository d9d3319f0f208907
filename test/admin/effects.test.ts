/**
 * What moderators' decisions do: a suspended user submits nothing (REST and an open socket),
 * transfers nothing out, and their workers are closed and cannot come back; a paused worker
 * is told and gets no job until unpaused; a trusted-only request waits for a trusted worker;
 * an award mints what the audit can prove.
 */
import t from 'tap'
import { api, balanceOf, eventually, grant, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { client, rawWorker, serve, submit } from '../helpers/pipeline.js'
import { connect } from '../helpers/ws.js'

async function moderatorOf(broker: any, url: string, name: string) {
  const user = await registerUser(url, name)
  await broker.services.accounts.setRoles(user.id, ['moderator'])
  return user
}

t.test('a suspended user cannot submit, transfer out or keep workers; lifting it restores them', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl, broker } = await startBroker(t, { redis })
  const mod = await moderatorOf(broker, url, 'mod')
  const farmer = await registerUser(url, 'farmer')
  const friend = await registerUser(url, 'friend')
  await grant(broker, farmer.id, 50)
  const worker = await rawWorker(wsUrl, farmer.key, { name: 'farm-1' })
  const socket = await client(wsUrl, farmer.key)
  t.teardown(() => { worker.close(); socket.close() })

  const suspend = await api(url, 'POST', '/v1/admin/users/farmer/suspension', { key: mod.key, body: { suspended: true, reason: 'farming kudos' } })
  t.equal(suspend.status, 200)
  t.equal(suspend.body.user.suspended, true)
  t.equal(suspend.body.action.reason, 'farming kudos')

  const closed = await worker.closed
  t.equal(closed.code, 4403, 'the worker is closed, with a code that says do not reconnect')
  t.ok(worker.frames.some((f) => f.type === 'error' && f.code === 'user_suspended'), 'and told why')
  const again = await connect(`${wsUrl}/v1/worker`, farmer.key).then(() => 'opened', (error) => String(error))
  t.match(again, /403/, 'a new worker socket is refused while suspended')

  const rest = await api(url, 'POST', '/v1/generate', { key: farmer.key, body: { prompt: 'p' } })
  t.equal(rest.status, 403)
  t.equal(rest.body.error.code, 'user_suspended', 'REST submit refused with its code')
  socket.send({ type: 'submit', id: 'late', prompt: 'p' })
  const refused = await socket.next((f) => f.id === 'late')
  t.equal(refused.code, 'user_suspended', 'a socket opened before the suspension is refused too')
  const transfer = await api(url, 'POST', '/v1/kudos/transfers', { key: farmer.key, body: { to: 'friend', amount: 10 }, headers: { 'idempotency-key': 'out-1' } })
  t.equal(transfer.body.error.code, 'user_suspended', 'no transfers out')
  const incoming = await api(url, 'POST', '/v1/kudos/transfers', { key: friend.key, body: { to: 'farmer', amount: 0.001 }, headers: { 'idempotency-key': 'in-1' } })
  t.equal(incoming.body.error?.code, 'insufficient_kudos', 'transfers in follow the ordinary rules (friend has nothing to send)')
  t.equal(await balanceOf(broker, farmer.id), 50, 'the balance is untouched')
  t.equal((await api(url, 'GET', '/v1/users/me', { key: farmer.key })).status, 200, 'the account can still be read')

  // A moderator cannot suspend another moderator; nobody suspends an admin.
  const other = await moderatorOf(broker, url, 'other')
  t.equal((await api(url, 'POST', '/v1/admin/users/other/suspension', { key: mod.key, body: { suspended: true, reason: 'x' } })).body.error.code, 'role_required')
  t.equal(other.username, 'other')

  const lift = await api(url, 'POST', '/v1/admin/users/farmer/suspension', { key: mod.key, body: { suspended: false, reason: 'appeal granted' } })
  t.equal(lift.body.user.suspended, false)
  const back = await rawWorker(wsUrl, farmer.key, { name: 'farm-1' })
  t.teardown(() => back.close())
  t.ok(back.frames.some((f) => f.type === 'ready' && f.name === 'farm-1'), 'the worker may come back')
  const ok = await api(url, 'POST', '/v1/generate', { key: farmer.key, body: { prompt: 'p' } })
  t.equal(ok.status, 202, 'submits are accepted again')
})

t.test('a paused worker is told, gets no job while paused, and takes jobs again once unpaused', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl, broker } = await startBroker(t, { redis })
  const mod = await moderatorOf(broker, url, 'mod')
  const owner = await registerUser(url, 'owner')
  const worker = await rawWorker(wsUrl, owner.key, { name: 'w-paused' })
  const user = await client(wsUrl)
  t.teardown(() => { worker.close(); user.close() })

  const pause = await api(url, 'POST', '/v1/admin/workers/w-paused/pause', { key: mod.key, body: { paused: true, reason: 'answers in gibberish' } })
  t.equal(pause.body.worker.paused, true)
  const told = await worker.next('moderation')
  t.same(told, { type: 'moderation', paused: true, trusted: false, reason: 'answers in gibberish' }, 'the worker hears it is paused, and why')
  const id = await submit(user, { max_length: 8 })
  const queued = await user.next('queued')
  t.equal(queued.is_possible, false, 'a paused worker does not count as able to serve')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.notOk(worker.frames.some((f) => f.type === 'job'), 'no job while paused')

  // A reconnect does not shake it off: the pause lives on the worker row.
  worker.close()
  await worker.closed
  const again = await rawWorker(wsUrl, owner.key, { name: 'w-paused' })
  t.teardown(() => again.close())
  t.equal((await again.next('moderation')).paused, true, 'paused again right after ready')

  await api(url, 'POST', '/v1/admin/workers/w-paused/pause', { key: mod.key, body: { paused: false, reason: 'fixed its backend' } })
  t.equal((await again.next('moderation')).paused, false, 'told it is unpaused')
  const job = await again.next('job')
  t.equal(job.forRequest, id, 'the waiting request goes to it now')
  serve(again, job.job, ['done'])
})

t.test('a trusted-only request waits for a trusted worker; other requests are served by anyone', async (t) => {
  const redis = await startTestRedis(t)
  const { url, wsUrl, broker } = await startBroker(t, { redis })
  const mod = await moderatorOf(broker, url, 'mod')
  const owner = await registerUser(url, 'owner')
  const stranger = await rawWorker(wsUrl, owner.key, { name: 'stranger' })
  const user = await client(wsUrl)
  t.teardown(() => { stranger.close(); user.close() })

  const picky = await api(url, 'POST', '/v1/generate', { body: { prompt: 'p', max_length: 8, trusted_workers: true } })
  t.equal(picky.status, 202)
  t.equal(picky.body.is_possible, false, 'no trusted worker online: said at once')
  const opens = { headers: { 'x-request-capability': picky.body.capability } } // an anonymous request's key
  const plain = await submit(user, { max_length: 8 })
  const first = await stranger.next('job')
  t.equal(first.forRequest, plain, 'the untrusted worker serves the ordinary request, not the picky one')
  serve(stranger, first.job, ['x'])
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(stranger.frames.filter((f) => f.type === 'job').length, 1, 'and never gets the trusted-only one')
  t.equal((await api(url, 'GET', `/v1/generate/${picky.body.id}`, opens)).body.state, 'waiting')

  const trust = await api(url, 'POST', '/v1/admin/workers/stranger/trust', { key: mod.key, body: { trusted: true, reason: 'known operator' } })
  t.equal(trust.body.worker.trusted, true)
  t.match(await stranger.next('moderation'), { trusted: true, paused: false })
  const second = await stranger.next('job')
  t.equal(second.forRequest, picky.body.id, 'trusted now: it takes the trusted-only request')
  serve(stranger, second.job, ['y'])
  await eventually(async () => (await api(url, 'GET', `/v1/generate/${picky.body.id}`, opens)).body.state === 'done', 10_000, 'the picky request to finish')
})

t.test('an award mints kudos with its memo and actor, and the ledger audit proves it', async (t) => {
  const redis = await startTestRedis(t)
  const { url, broker } = await startBroker(t, { redis })
  const mod = await moderatorOf(broker, url, 'mod')
  const user = await registerUser(url, 'helper')
  const award = await api(url, 'POST', '/v1/admin/users/helper/awards', { key: mod.key, body: { amount: '12.5', memo: 'wrote the docs' } })
  t.equal(award.status, 201)
  t.equal(award.body.amount, 12.5)
  t.match(award.body.action, { action: 'award', actor: 'mod', target: 'helper', reason: 'wrote the docs', details: { amount: 12.5, entry: award.body.entry_id } })
  const legacy = await api(url, 'POST', '/v1/kudos/awards', { key: mod.key, body: { to: 'helper', amount: 1, memo: 'the older route' } })
  t.equal(legacy.status, 201, 'the kudos route awards too, into the same trail')
  t.equal(await balanceOf(broker, user.id), 13.5)
  const ledger = await api(url, 'GET', '/v1/users/me/ledger', { key: user.key })
  t.match(ledger.body.entries.map((e: any) => [e.kind, e.memo]), [['award', 'the older route'], ['award', 'wrote the docs']])
  const trail = await broker.services.store.moderation.actions({ targetUserId: user.id })
  t.equal(trail.length, 2, 'both awards are in the trail')
  const report = await broker.services.store.audit.run()
  t.equal(report.ok, true, `the audit is clean: ${report.problems.join('; ')}`)
  t.equal(report.minted, 13_500, 'and the mint is exactly the awards')
  const zero = await api(url, 'POST', '/v1/admin/users/helper/awards', { key: mod.key, body: { amount: 0, memo: 'x' } })
  t.equal(zero.body.error.code, 'invalid_amount', 'a bad amount is refused with its code')
  t.equal((await broker.services.store.moderation.actions({ targetUserId: user.id })).length, 2, 'and changes nothing')
})
