import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

t.test('API keys: wrong, revoked, missing, anonymous, header forms', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')

  t.match(alice.key, /^hb_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{32}$/, 'key has 192 secret bits')
  const stored = await broker.services.store.accounts.listKeys(alice.id)
  t.notOk(JSON.stringify(stored).includes(alice.key.slice(-32)), 'the secret is not stored')

  const viaHeader = await api(url, 'GET', '/v1/users/me', { key: alice.key })
  t.equal(viaHeader.body.username, 'alice')
  const viaBearer = await api(url, 'GET', '/v1/users/me', { headers: { authorization: `Bearer ${alice.key}` } })
  t.equal(viaBearer.body.username, 'alice')

  const missing = await api(url, 'GET', '/v1/users/me')
  t.equal(missing.body.username, 'Anonymous')
  t.equal(missing.body.anonymous, true)
  const anonKey = await api(url, 'GET', '/v1/users/me', { key: '0000000000' })
  t.equal(anonKey.body.id, 0)

  for (const wrong of ['nope', alice.key.slice(0, -1) + (alice.key.endsWith('A') ? 'B' : 'A'), '0000000001', 'hb_' + 'a'.repeat(12) + '_' + 'b'.repeat(32)]) {
    const answer = await api(url, 'GET', '/v1/users/me', { key: wrong })
    t.equal(answer.status, 401, `wrong key ${wrong.slice(0, 8)}…`)
    t.equal(answer.body.error.code, 'unauthorized')
  }

  const created = await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'bot', scopes: ['read'] } })
  t.equal(created.status, 201)
  const readOnly = created.body.apikey as string
  const listed = await api(url, 'GET', '/v1/users/me/keys', { key: alice.key })
  t.equal(listed.body.keys.length, 2)
  t.notOk(JSON.stringify(listed.body).includes(readOnly), 'listing never shows a key')

  const scoped = await api(url, 'POST', '/v1/kudos/transfers', { key: readOnly, body: { to: 'Anonymous', amount: 1 }, headers: { 'idempotency-key': 'x' } })
  t.equal(scoped.body.error.code, 'insufficient_scope')
  const noMint = await api(url, 'POST', '/v1/users/me/keys', { key: readOnly, body: { name: 'escalate', scopes: ['all'] } })
  t.equal(noMint.status, 403, 'a narrow key cannot create a broader one')

  const revoke = await api(url, 'DELETE', `/v1/users/me/keys/${created.body.id}`, { key: alice.key })
  t.equal(revoke.status, 204)
  const revoked = await api(url, 'GET', '/v1/users/me', { key: readOnly })
  t.equal(revoked.status, 401)
  t.equal(revoked.body.error.code, 'key_revoked')
  const again = await api(url, 'DELETE', `/v1/users/me/keys/${created.body.id}`, { key: alice.key })
  t.equal(again.status, 404)

  const badScope = await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: 'x', scopes: ['root'] } })
  t.equal(badScope.body.error.code, 'validation_failed')
})

t.test('registration, lookups and the kudos list', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  await registerUser(url, 'Zed')
  const dup = await api(url, 'POST', '/v1/users', { body: { username: 'zed' } })
  t.equal(dup.status, 409)
  t.equal(dup.body.error.code, 'username_taken')
  for (const bad of ['a', '-dash', 'x'.repeat(40), 'sp ace', '12345', 'Anonymous']) {
    const answer = await api(url, 'POST', '/v1/users', { body: { username: bad } })
    t.ok(answer.status === 400 || answer.status === 409, `refused ${bad}`)
  }
  const byName = await api(url, 'GET', '/v1/users/zed')
  t.equal(byName.body.username, 'Zed')
  t.same(Object.keys(byName.body).sort(), ['created_at', 'id', 'kudos', 'roles', 'username'])
  const byId = await api(url, 'GET', `/v1/users/${byName.body.id}`)
  t.equal(byId.body.username, 'Zed')
  const none = await api(url, 'GET', '/v1/users/ghost')
  t.equal(none.status, 404)
  t.equal(none.body.error.code, 'unknown_user')
  const list = await api(url, 'GET', '/v1/users?limit=10')
  t.equal(list.body.users.length, 2)
  const badLimit = await api(url, 'GET', '/v1/users?limit=abc')
  t.equal(badLimit.status, 400)
  const route = await api(url, 'GET', '/v1/nothing')
  t.equal(route.body.error.code, 'not_found')
})

t.test('awards need a moderator and mint kudos', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const mod = await registerUser(url, 'mod')
  const user = await registerUser(url, 'user')
  const denied = await api(url, 'POST', '/v1/kudos/awards', { key: user.key, body: { to: 'user', amount: 5, memo: 'me' } })
  t.equal(denied.status, 403)
  await broker.services.accounts.setRoles(mod.id, ['moderator'])
  const award = await api(url, 'POST', '/v1/kudos/awards', { key: mod.key, body: { to: 'user', amount: 5, memo: 'docs' } })
  t.equal(award.status, 201)
  const me = await api(url, 'GET', '/v1/users/me', { key: user.key })
  t.equal(me.body.kudos, 5)
  t.equal(me.body.totals.awarded, 5)
  const ledger = await api(url, 'GET', '/v1/users/me/ledger', { key: user.key })
  t.equal(ledger.body.entries[0].kind, 'award')
  t.equal(ledger.body.entries[0].memo, 'docs')
})

t.test('a key without the read scope does not read the account', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice-narrow')
  const make = async (scopes: string[]) => (await api(url, 'POST', '/v1/users/me/keys', { key: alice.key, body: { name: scopes.join('-'), scopes } })).body.apikey as string
  for (const scopes of [['transfer'], ['work'], ['generate']]) {
    const answer = await api(url, 'GET', '/v1/users/me', { key: await make(scopes) })
    t.equal(answer.status, 403, `a ${scopes.join(',')} key is refused`)
    t.equal(answer.body.error.code, 'insufficient_scope')
  }
  const reader = await api(url, 'GET', '/v1/users/me', { key: await make(['read', 'transfer']) })
  t.equal(reader.status, 200, 'a key with read reads it')
  t.equal(reader.body.username, 'alice-narrow')
  t.equal((await api(url, 'GET', '/v1/users/me')).body.anonymous, true, 'anonymous callers still read the shared account')
})
