/**
 * `/api/v2/find_user` by key scope, as AI Horde answers a restricted (shared) key: a key without
 * `read` (a bridge's `work` key, a bot's `transfer` key) learns who it is — the public user details
 * anyone may read at `/users/{id}` — but not the account's own details (`worker_ids`); a key with
 * `read` (KoboldAI Lite and SillyTavern hold the user's full key) sees them.
 */
import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from '../helpers/harness.js'
import { rawWorker } from '../helpers/pipeline.js'

t.test('find_user gives a non-read key the public details only', async (t) => {
  const { broker, url, wsUrl } = await startBroker(t, { redis: await startTestRedis(t) })
  const owner = await registerUser(url, 'bridge-owner')
  const work = await broker.services.accounts.issueKey(owner.id, 'bridge', ['work'])
  const transfer = await broker.services.accounts.issueKey(owner.id, 'tips', ['transfer'])
  const read = await broker.services.accounts.issueKey(owner.id, 'viewer', ['read'])
  const worker = await rawWorker(wsUrl, work.key, { name: 'owner-box' })
  t.teardown(() => worker.close())

  const full = await api(url, 'GET', '/api/v2/find_user', { key: owner.key })
  t.equal(full.status, 200)
  t.equal(full.body.username, `bridge-owner#${owner.id}`)
  t.equal(full.body.worker_ids?.length, 1, 'the full key sees the account\'s workers')
  t.equal((await api(url, 'GET', '/api/v2/find_user', { key: read.key })).body.worker_ids?.length, 1, 'a read key too')

  const publicView = await api(url, 'GET', `/api/v2/users/${owner.id}`)
  for (const [label, key] of [['work', work.key], ['transfer', transfer.key]] as const) {
    const found = await api(url, 'GET', '/api/v2/find_user', { key })
    t.equal(found.status, 200, `${label} key: the bridge still finds its user`)
    t.equal(found.body.username, `bridge-owner#${owner.id}`, `${label} key: username`)
    t.equal(found.body.id, owner.id, `${label} key: id`)
    t.equal(found.body.worker_count, 1, `${label} key: public fields are there`)
    t.notOk('worker_ids' in found.body, `${label} key: the own details are not`)
    const { account_age: _a, ...rest } = found.body
    const { account_age: _b, ...expected } = publicView.body
    t.same(rest, expected, `${label} key: exactly what anyone reads at /users/{id}`)
    const self = await api(url, 'GET', `/api/v2/users/${owner.id}`, { key })
    t.notOk('worker_ids' in self.body, `${label} key: /users/{own id} shows no more`)
  }
})
