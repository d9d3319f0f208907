import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

t.test('usernames reserve the words worker names reserve, in any case; existing holders keep theirs', async (t) => {
  const { broker, url } = await startBroker(t, { redis: await startTestRedis(t) })
  // An account that already holds a reserved word (made before the rule) is left alone.
  const { user: old } = await broker.services.store.accounts.createUser({ username: 'Root', roles: [], createdAt: Date.now() })

  for (const username of ['admin', 'ROOT', 'Moderator', 'anonymous', 'hOrDe']) {
    const answer = await api(url, 'POST', '/v1/users', { body: { username } })
    t.equal(answer.status, 400, `${username}: refused`)
    t.equal(answer.body.error?.code, 'reserved_username', `${username}: coded error`)
  }
  t.notOk(await broker.services.accounts.byName('admin'), 'no account was created for a refused name')
  await t.rejects(broker.services.accounts.createUser('Horde'), { code: 'reserved_username' }, 'the accounts module refuses it too')

  const near = await registerUser(url, 'admin2')
  t.equal(near.username, 'admin2', 'a name that only contains a reserved word is fine')

  const kept = await broker.services.accounts.byName('root')
  t.equal(kept?.id, old.id, 'the existing "Root" account is still there under its name')

  // An OAuth first login from someone whose display name is a reserved word gets the next candidate.
  const login = await broker.services.identities.login({ provider: 'github', subject: '42', name: 'Admin' })
  t.equal(login.user.username, 'Admin-2', 'OAuth skips the reserved candidate')
})
