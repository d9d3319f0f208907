/**
 * Browser sessions end on the server: a copied cookie stops working after logout, "log out
 * everywhere" (page and REST) ends every session of the user, a suspension ends them too, and
 * with two broker processes on one PostgreSQL database a logout at one is honoured by the other.
 */
import t from 'tap'
import { api, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
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
