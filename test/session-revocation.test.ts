/**
 * Browser sessions end on the server: a copied cookie stops working after logout, "log out
 * everywhere" (page and REST) ends every session of the user, a suspension ends them too, and
 * with two broker processes on one PostgreSQL database a logout at one is honoured by the other.
 * A moderator ends a user's sessions through REST, and the operator with horde-admin on the database.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { api, registerUser, startBroker, startTestRedis, tempDir } from './helpers/harness.js'
import { createTestDatabase } from './helpers/postgres.js'
import { CookieClient, csrfOf } from './helpers/oauth-provider.js'

/** A browser logged in with `key` through the key login form. */
async function logIn(url: string, key: string): Promise<CookieClient> {
  const browser = new CookieClient(url)
  const login = await browser.post('/login/key', { key, next: '/account' })
  if (!browser.cookies.has('hb_session')) throw new Error(`key login failed: ${login.response.status} ${login.url}`)
  return browser
}

/** Another browser holding a copy of `browser`'s cookies (a stolen cookie), optionally for another process. */
function copyOf(browser: CookieClient, url = browser.base): CookieClient {
  const thief = new CookieClient(url)
  for (const [name, value] of browser.cookies) thief.cookies.set(name, value)
  return thief
}

async function whoAmI(browser: CookieClient): Promise<string> {
  const me = await (await browser.request('/v1/users/me')).json()
  return me.anonymous ? 'anonymous' : me.username
}

async function csrf(browser: CookieClient): Promise<string> {
  return csrfOf(await (await browser.request('/account')).text())
}

t.test('logout, log out everywhere and suspension end sessions on the server; copied cookies stop working', async (t) => {
  const { broker, url } = await startBroker(t, { redis: await startTestRedis(t) })
  const alice = await registerUser(url, 'alice')

  const browser = await logIn(url, alice.key)
  const thief = copyOf(browser)
  t.equal(await whoAmI(thief), 'alice', 'a copied cookie acts as the user while the session lives')
  await browser.post('/logout', { _csrf: await csrf(browser) })
  t.notOk(browser.cookies.has('hb_session'), 'logout clears the cookie in the browser')
  t.equal(await whoAmI(thief), 'anonymous', 'after logout the copied cookie is no session')
  t.equal((await thief.request('/account')).status, 303, 'and the account page sends it to the login page')

  const home = await logIn(url, alice.key)
  const work = await logIn(url, alice.key)
  const stolen = copyOf(work)
  t.equal(await whoAmI(stolen), 'alice')
  await home.post('/logout/everywhere', { _csrf: await csrf(home) })
  t.equal(await whoAmI(home), 'anonymous', 'log out everywhere ends this session')
  t.equal(await whoAmI(work), 'anonymous', 'and the one in another browser')
  t.equal(await whoAmI(stolen), 'anonymous', 'and its copy')

  const third = await logIn(url, alice.key)
  const rest = await api(url, 'DELETE', '/v1/users/me/sessions', { key: alice.key })
  t.equal(rest.status, 200)
  t.same(rest.body, { ended: 1 }, 'REST log out everywhere ends the one live session')
  t.equal(await whoAmI(third), 'anonymous')

  const bob = await registerUser(url, 'bob')
  const bobs = await logIn(url, bob.key)
  const keep = await logIn(url, alice.key)
  t.equal(await whoAmI(bobs), 'bob')
  await broker.services.admin.setSuspended({ actor: { id: null, name: 'test' }, roles: ['admin'] }, 'bob', true, 'farming')
  t.equal(await whoAmI(bobs), 'anonymous', 'a suspension ends the user\'s sessions')
  t.equal(await whoAmI(keep), 'alice', 'other users\' sessions are untouched')
  await broker.services.admin.setSuspended({ actor: { id: null, name: 'test' }, roles: ['admin'] }, 'bob', false, 'cleared')
  t.equal(await whoAmI(bobs), 'anonymous', 'lifting the suspension does not bring old sessions back')
})

t.test('two broker processes on one PostgreSQL database: a logout at one ends the session at the other', async (t) => {
  const redis = await startTestRedis(t)
  const env = { DATABASE_URL: await createTestDatabase(t, 'sessions'), SESSION_SECRET: 'a-shared-session-secret-of-32-chars-or-more' }
  const one = await startBroker(t, { redis, env })
  const two = await startBroker(t, { redis, env })
  const carol = await registerUser(one.url, 'carol')
  const browser = await logIn(one.url, carol.key)
  const elsewhere = copyOf(browser, two.url)
  t.equal(await whoAmI(elsewhere), 'carol', 'the other process honours the session')
  await browser.post('/logout', { _csrf: await csrf(browser) })
  t.equal(await whoAmI(elsewhere), 'anonymous', 'and stops honouring it after logout at the first')
})

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

t.test('an admin action ends a user\'s sessions: REST (role-checked, in the trail) and horde-admin on the database', async (t) => {
  t.setTimeout(300_000)
  const dataDir = tempDir()
  const { url, database } = await startBroker(t, { redis: await startTestRedis(t), dataDir, env: { ADMIN_USERS: 'root-op' } })
  // The operator's connection to the broker's database (PostgreSQL when the suite runs on it).
  const onDb: Record<string, string> = database.startsWith('postgres') ? { DATABASE_URL: database } : { DATA_DIR: dataDir }
  t.ok((await api(url, 'GET', '/v1/users/root-op')).body.id, 'ADMIN_USERS made the admin account')
  const dave = await registerUser(url, 'dave')
  const erin = await registerUser(url, 'erin')

  const daves = await logIn(url, dave.key)
  const refused = await api(url, 'POST', `/v1/admin/users/dave/logout`, { key: erin.key, body: { reason: 'not mine to end' } })
  t.equal(refused.status, 403, 'a plain user may not')
  t.equal(refused.body.error?.code, 'role_required')
  t.equal(await whoAmI(daves), 'dave', 'and nothing ended')

  // The admin's key, made on the database as the operator would.
  const key = await cli(['users', 'key', 'root-op'], onDb)
  t.equal(key.code, 0, key.stderr)
  const rootKey = /hb_[A-Za-z0-9_-]+/.exec(key.stdout)![0]
  const ended = await api(url, 'POST', `/v1/admin/users/dave/logout`, { key: rootKey, body: { reason: 'stolen laptop' } })
  t.equal(ended.status, 200, JSON.stringify(ended.body))
  t.equal(ended.body.ended, 1, 'the one session ended')
  t.equal(ended.body.action?.action, 'sessions_end', 'and the trail has it')
  t.equal(await whoAmI(daves), 'anonymous', 'the cookie is no session any more')

  const again = await logIn(url, dave.key)
  const offline = await cli(['users', 'logout', 'dave', '--reason', 'operator on the database'], onDb)
  t.equal(offline.code, 0, offline.stderr)
  t.match(offline.stdout, /dave: 1 session\(s\) ended/, 'horde-admin says what it did')
  t.equal(await whoAmI(again), 'anonymous', 'a session ended on the database ends at once in the running broker')
})

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/horde-admin.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
      })
  })
}
