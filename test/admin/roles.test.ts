/**
 * Roles: ADMIN_USERS makes admins at start-up (and takes the role from anyone else); admins
 * grant and revoke moderator; every admin route refuses a caller without the role with
 * `role_required`, before looking at the body; each change lands in the audit trail.
 */
import t from 'tap'
import { api, registerUser, startBroker, startTestRedis, tempDir } from '../helpers/harness.js'

/** Every admin route, the role it needs, and a body that would be valid. */
const ROUTES: Array<{ method: string; path: string; need: 'moderator' | 'admin'; body?: unknown }> = [
  { method: 'GET', path: '/v1/admin/users/target', need: 'moderator' },
  { method: 'POST', path: '/v1/admin/users/target/roles', need: 'admin', body: { role: 'moderator', grant: true, reason: 'r' } },
  { method: 'POST', path: '/v1/admin/users/target/suspension', need: 'moderator', body: { suspended: true, reason: 'r' } },
  { method: 'POST', path: '/v1/admin/users/target/awards', need: 'moderator', body: { amount: 1, memo: 'r' } },
  { method: 'GET', path: '/v1/admin/workers', need: 'moderator' },
  { method: 'POST', path: '/v1/admin/workers/w1/trust', need: 'moderator', body: { trusted: true, reason: 'r' } },
  { method: 'POST', path: '/v1/admin/workers/w1/pause', need: 'moderator', body: { paused: true, reason: 'r' } },
  { method: 'GET', path: '/v1/admin/actions', need: 'moderator' },
  { method: 'GET', path: '/v1/admin/models', need: 'moderator' },
  { method: 'GET', path: '/v1/admin/audit', need: 'admin' },
]

t.test('ADMIN_USERS makes admins at start-up, creating a missing name and demoting anyone else', async (t) => {
  const redis = await startTestRedis(t)
  const dataDir = tempDir()
  const first = await startBroker(t, { redis, dataDir, env: { ADMIN_USERS: 'alice, carol' } })
  const carol = await first.broker.services.accounts.byName('carol')
  t.ok(carol, 'carol had no account: ADMIN_USERS made one')
  t.same(carol!.roles, ['admin'])
  const alice = await first.broker.services.accounts.byName('alice')
  t.same(alice!.roles, ['admin'])
  await first.close()

  // Restarted with only alice: carol loses the role, and the trail says who took it and why.
  const second = await startBroker(t, { redis, dataDir, env: { ADMIN_USERS: `${alice!.id}` } })
  t.same((await second.broker.services.accounts.byId(carol!.id))!.roles, [], 'carol is no longer an admin')
  t.same((await second.broker.services.accounts.byId(alice!.id))!.roles, ['admin'], 'an id names a user too')
  const trail = await second.broker.services.store.moderation.actions({ targetUserId: carol!.id })
  t.match(trail.map((a) => [a.action, a.actor, a.details.role]), [['role_revoke', 'ADMIN_USERS', 'admin'], ['role_grant', 'ADMIN_USERS', 'admin']])
})

t.test('an ADMIN_USERS id that does not exist stops the start', async (t) => {
  const redis = await startTestRedis(t)
  await t.rejects(startBroker(t, { redis, env: { ADMIN_USERS: '999' } }), { code: 'unknown_user', message: /ADMIN_USERS names user id 999/ })
})

t.test('every admin route is role-checked with a coded error, before its body is read', async (t) => {
  const redis = await startTestRedis(t)
  const { url, broker } = await startBroker(t, { redis, env: { ADMIN_USERS: 'root' } })
  const plain = await registerUser(url, 'plain')
  const mod = await registerUser(url, 'mod')
  await registerUser(url, 'target')
  const root = await broker.services.accounts.byName('root')
  const rootKey = (await broker.services.accounts.issueKey(root!.id, 'test', ['all'])).key
  const grant = await api(url, 'POST', '/v1/admin/users/mod/roles', { key: rootKey, body: { role: 'moderator', grant: true, reason: 'runs the queue' } })
  t.equal(grant.status, 200)
  t.same(grant.body.user.roles, ['moderator'])
  t.equal(grant.body.changed, true)
  const owner = await broker.services.accounts.byName('plain')
  await broker.services.store.workers.register('w1', owner!.id, Date.now())

  for (const route of ROUTES) {
    const anonymous = await api(url, route.method, route.path, { body: route.body })
    const junk = route.method === 'GET' ? undefined : { nonsense: true }
    t.equal(anonymous.body.error?.code, 'login_required', `${route.method} ${route.path}: anonymous`)
    const refused = await api(url, route.method, route.path, { key: plain.key, body: junk })
    t.equal(refused.status, 403, `${route.method} ${route.path}: a plain user`)
    t.equal(refused.body.error.code, 'role_required', `${route.method} ${route.path}: role_required, not a body error`)
    const asMod = await api(url, route.method, route.path, { key: mod.key, body: route.body })
    if (route.need === 'admin') t.equal(asMod.body.error?.code, 'role_required', `${route.method} ${route.path}: a moderator is not enough`)
    else t.ok(asMod.status < 300, `${route.method} ${route.path}: a moderator may (${asMod.status} ${JSON.stringify(asMod.body.error ?? '')})`)
  }
  const asAdmin = await api(url, 'GET', '/v1/admin/audit', { key: rootKey })
  t.equal(asAdmin.body.ok, true, 'the admin reads the ledger audit: clean after the award')

  // Only moderator is granted here; admin comes from ADMIN_USERS.
  const bad = await api(url, 'POST', '/v1/admin/users/plain/roles', { key: rootKey, body: { role: 'admin', grant: true, reason: 'x' } })
  t.equal(bad.body.error.code, 'bad_role')
  const noReason = await api(url, 'POST', '/v1/admin/users/plain/roles', { key: rootKey, body: { role: 'moderator', grant: true, reason: '' } })
  t.equal(noReason.body.error.code, 'validation_failed', 'a change needs a reason')
  const narrow = (await broker.services.accounts.issueKey(root!.id, 'narrow', ['read'])).key
  const narrowChange = await api(url, 'POST', '/v1/admin/users/plain/roles', { key: narrow, body: { role: 'moderator', grant: true, reason: 'x' } })
  t.equal(narrowChange.body.error.code, 'insufficient_scope', 'a read-only key of an admin reads, but changes nothing')
  t.equal((await api(url, 'GET', '/v1/admin/users/plain', { key: narrow })).status, 200)

  const revoke = await api(url, 'POST', '/v1/admin/users/mod/roles', { key: rootKey, body: { role: 'moderator', grant: false, reason: 'stepped down' } })
  t.same(revoke.body.user.roles, [])
  const again = await api(url, 'POST', '/v1/admin/users/mod/roles', { key: rootKey, body: { role: 'moderator', grant: false, reason: 'twice' } })
  t.equal(again.body.changed, false, 'revoking a role not held changes nothing and is not recorded')
  t.equal((await api(url, 'GET', '/v1/admin/workers', { key: mod.key })).body.error.code, 'role_required', 'the revoked role is gone at the next request')

  const trail = await api(url, 'GET', '/v1/admin/actions?user=mod', { key: rootKey })
  t.match(trail.body.actions, [
    { action: 'role_revoke', actor: 'root', actor_id: root!.id, target: 'mod', reason: 'stepped down', details: { role: 'moderator' } },
    { action: 'role_grant', actor: 'root', target: 'mod', reason: 'runs the queue' },
  ], 'the trail: who, what, why, newest first')
  t.ok(trail.body.actions.every((a: any) => !Number.isNaN(Date.parse(a.at))), 'and when')
  const all = await api(url, 'GET', '/v1/admin/actions', { key: rootKey })
  t.same(all.body.actions.map((a: any) => a.action).sort(),
    ['award', 'role_grant', 'role_grant', 'role_revoke', 'user_suspend', 'worker_pause', 'worker_trust'].sort(),
    'every change the moderator made is in the trail, and nothing else')
})
