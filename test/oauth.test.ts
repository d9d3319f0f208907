import t from 'tap'
import { WebSocket } from 'ws'
import { ConfigError, loadConfig } from '../src/config.js'
import { safeNext } from '../src/web/security.js'
import { api, startBroker, startTestRedis, type TestLike } from './helpers/harness.js'
import { CookieClient, csrfOf, SESSION_SECRET, startFakeProvider } from './helpers/oauth-provider.js'

async function setUp(t: TestLike, providers: string[] = ['github', 'google']) {
  const redis = await startTestRedis(t)
  const provider = await startFakeProvider(t)
  const env: Record<string, string> = { SESSION_SECRET }
  for (const p of providers) Object.assign(env, provider.env(p))
  const broker = await startBroker(t, { redis, env })
  return { provider, ...broker }
}

const userCount = (broker: Awaited<ReturnType<typeof setUp>>['broker']) => broker.services.store.accounts.countUsers()

t.test('the code flow: the first login creates the user, the next one finds it', async (t) => {
  const { provider, broker, url } = await setUp(t)
  provider.as('github', { id: '4242', name: 'Octo Cat!' })
  const before = await userCount(broker)

  const browser = new CookieClient(url)
  const login = await browser.follow('/auth/github/login?next=/playground')
  t.equal(login.response.status, 200)
  t.equal(new URL(login.url).pathname, '/playground', 'back where the login was asked for')
  t.ok(login.hops.some((hop) => hop.startsWith(provider.url)), 'went through the provider')
  const authorize = provider.authorizeCalls.at(-1)!
  t.equal(authorize.get('scope'), 'read:user')
  t.equal(authorize.get('code_challenge_method'), 'S256', 'PKCE for GitHub')
  t.equal(authorize.get('redirect_uri'), `${url}/auth/github/callback`)
  t.ok((authorize.get('state') ?? '').length >= 32, 'an unguessable state')
  t.equal(await userCount(broker), before + 1, 'one user created')

  const me = await browser.request('/v1/users/me').then((r) => r.json())
  t.equal(me.username, 'Octo_Cat', 'username derived from the provider name')
  t.equal(me.anonymous, false)
  const session = browser.cookies.get('hb_session')
  t.ok(session, 'a session cookie')

  const second = new CookieClient(url)
  await second.follow('/auth/github/login')
  const again = await second.request('/v1/users/me').then((r) => r.json())
  t.equal(again.id, me.id, 'the second login finds the same user')
  t.equal(await userCount(broker), before + 1, 'and creates nobody')

  provider.as('github', { id: '777', name: 'Octo Cat' })
  const other = new CookieClient(url)
  await other.follow('/auth/github/login')
  const namesake = await other.request('/v1/users/me').then((r) => r.json())
  t.equal(namesake.username, 'Octo_Cat-2', 'a namesake gets a free variant of the name')
  t.not(namesake.id, me.id)
})

t.test('session cookie attributes, logout, tampering', async (t) => {
  const { provider, url } = await setUp(t, ['github'])
  provider.as('github', { id: '1', name: 'ada' })
  const browser = new CookieClient(url)
  const start = await browser.request('/auth/github/login')
  t.equal(start.status, 303)
  const cookies = start.headers.getSetCookie().join('\n')
  t.match(cookies, /hb_login=[^;]+;.*HttpOnly/i)
  t.match(cookies, /SameSite=Lax/i)
  const callback = await browser.follow(start.headers.get('location')!)
  t.equal(new URL(callback.url).pathname, '/account')
  const page = await callback.response.text()
  t.match(page, /<h1>ada<\/h1>/)

  const jar = new Map(browser.cookies)
  const [value] = jar.get('hb_session')!.split('.')
  browser.cookies.set('hb_session', jar.get('hb_session')!.replace(/^\d+/, String(Number(value) + 1)))
  const forged = await browser.request('/v1/users/me').then((r) => r.json())
  t.equal(forged.anonymous, true, 'a tampered cookie is ignored')
  browser.cookies.set('hb_session', jar.get('hb_session')!)

  const logout = await browser.post('/logout', { _csrf: csrfOf(page) })
  t.equal(new URL(logout.url).pathname, '/')
  t.notOk(browser.cookies.has('hb_session'), 'logout clears the cookie')
  const after = await browser.request('/v1/users/me').then((r) => r.json())
  t.equal(after.anonymous, true)
})

t.test('a forged or missing state is refused and logs nobody in', async (t) => {
  const { provider, broker, url } = await setUp(t, ['github'])
  provider.as('github', { id: '99', name: 'mallory' })
  const before = await userCount(broker)

  const victim = new CookieClient(url)
  const start = await victim.request('/auth/github/login')
  const atProvider = await fetch(start.headers.get('location')!, { redirect: 'manual' })
  const back = new URL(atProvider.headers.get('location')!)
  back.searchParams.set('state', 'forged-' + back.searchParams.get('state'))
  const forged = await victim.request(back.href)
  t.equal(forged.status, 400)
  t.match(await forged.text(), /state mismatch/)
  t.notOk(victim.cookies.has('hb_session'))

  // An attacker's own callback URL (code and state from their flow) sent to a victim who never started one.
  const attacker = new CookieClient(url)
  const theirs = await attacker.request('/auth/github/login')
  const theirProvider = await fetch(theirs.headers.get('location')!, { redirect: 'manual' })
  const fresh = new CookieClient(url)
  const planted = await fresh.request(theirProvider.headers.get('location')!)
  t.equal(planted.status, 400, 'a callback without the login cookie of this browser is refused')
  t.notOk(fresh.cookies.has('hb_session'))

  const denied = await victim.request('/auth/github/callback?error=access_denied&state=x')
  t.equal(denied.status, 400)
  t.equal(await userCount(broker), before, 'nobody was created')
  const unknown = await victim.request('/auth/myspace/login')
  t.equal(unknown.status, 404)
  t.equal(provider.refusals.length, 0, 'no code ever reached the token endpoint with a bad state')
})

t.test('a logged-in user links a second provider, and either login finds the account', async (t) => {
  const { provider, broker, url } = await setUp(t)
  provider.as('github', { id: '5', name: 'grace' })
  provider.as('google', { id: 'g-5', name: 'Grace Hopper' })
  const browser = new CookieClient(url)
  const first = await browser.follow('/auth/github/login')
  const page = await first.response.text()
  t.match(page, /data-link="google"/, 'the account page offers to link Google')

  const noToken = await browser.post('/account/link/google', {})
  t.equal(noToken.response.status, 403, 'linking needs the CSRF token')
  const linked = await browser.post('/account/link/google', { _csrf: csrfOf(page) })
  t.equal(new URL(linked.url).pathname, '/account')
  const linkedPage = await linked.response.text()
  t.match(linkedPage, /The login was linked/)
  t.notMatch(linkedPage, /data-link="google"/)
  const me = await browser.request('/v1/users/me').then((r) => r.json())
  t.same((await broker.services.identities.forUser(me.id)).map((i) => i.provider), ['github', 'google'])

  const viaGoogle = new CookieClient(url)
  await viaGoogle.follow('/auth/google/login')
  const same = await viaGoogle.request('/v1/users/me').then((r) => r.json())
  t.equal(same.id, me.id, 'logging in with the linked provider finds the same user')
  t.equal(provider.authorizeCalls.at(-1)!.get('scope'), 'openid profile')

  // A login that belongs to someone else cannot be linked.
  provider.as('github', { id: '6', name: 'linus' })
  const someoneElse = new CookieClient(url)
  await someoneElse.follow('/auth/github/login')
  const theirs = await someoneElse.request('/account').then((r) => r.text())
  const taken = await someoneElse.post('/account/link/google', { _csrf: csrfOf(theirs) })
  t.equal(taken.response.status, 409)
  t.match(await taken.response.text(), /already linked to another account/)
})

t.test('redirects after login stay on this site', async (t) => {
  const { provider, url } = await setUp(t, ['github'])
  provider.as('github', { id: '8', name: 'eve' })
  for (const next of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/auth/github/login', '/.//evil.example/x', '/a/..//evil.example', '/%2e//evil.example']) {
    const browser = new CookieClient(url)
    const done = await browser.follow(`/auth/github/login?next=${encodeURIComponent(next)}`)
    t.equal(done.url, `${url}/account`, `next=${next} ends on the account page`)
  }
  const browser = new CookieClient(url)
  const ok = await browser.follow(`/auth/github/login?next=${encodeURIComponent('/account?before=5#ledger')}`)
  t.equal(new URL(ok.url).pathname + new URL(ok.url).search, '/account?before=5')
  const login = await browser.request('/login?next=https://evil.example').then((r) => r.text())
  t.notMatch(login, /evil/)
})

t.test('the session cookie cannot be used across sites', async (t) => {
  const { provider, url, wsUrl } = await setUp(t, ['github'])
  provider.as('github', { id: '9', name: 'sam' })
  const browser = new CookieClient(url)
  await browser.follow('/auth/github/login')
  const me = await browser.request('/v1/users/me').then((r) => r.json())
  t.equal(me.username, 'sam')

  const noToken = await browser.request('/v1/users/me/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', scopes: ['read'] }) })
  t.equal(noToken.status, 403)
  t.equal((await noToken.json()).error.code, 'csrf_failed', 'a cookie-authenticated POST needs the CSRF token')
  const page = await browser.request('/account').then((r) => r.text())
  const withToken = await browser.request('/v1/users/me/keys', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrfOf(page) }, body: JSON.stringify({ name: 'x', scopes: ['read'] }) })
  t.equal(withToken.status, 201, 'with the token it works')

  const open = (origin: string) => new Promise<number>((resolve) => {
    const socket = new WebSocket(`${wsUrl}/v1/status/live`, { headers: { cookie: browser.cookieHeader(), origin } })
    socket.on('open', () => { socket.close(); resolve(101) })
    socket.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0)
      req.destroy()
    })
    socket.on('error', () => resolve(-1))
  })
  t.equal(await open('https://evil.example'), 403, 'a cookie upgrade from another origin is refused')
  t.equal(await open(url), 101, 'from this origin it opens')

  const html = await fetch(url + '/').then((r) => r.headers)
  t.match(html.get('content-security-policy') ?? '', /default-src 'self'; script-src 'self'/)
  t.match(html.get('content-security-policy') ?? '', new RegExp(`form-action 'self' ${provider.url}`))
  t.equal(html.get('x-frame-options'), 'DENY')
  const json = await api(url, 'GET', '/v1/users/me')
  t.equal(json.headers.get('content-security-policy'), null, 'JSON answers carry no page policy')
})

t.test('cookies are Secure when PUBLIC_URL is https', async (t) => {
  const redis = await startTestRedis(t)
  const provider = await startFakeProvider(t)
  const { url } = await startBroker(t, { redis, env: { SESSION_SECRET, PUBLIC_URL: 'https://horde.example', ...provider.env('github') } })
  const start = await fetch(url + '/auth/github/login', { redirect: 'manual' })
  const cookies = start.headers.getSetCookie()
  t.ok(cookies.length >= 2)
  for (const cookie of cookies) t.match(cookie, /; Secure/i, cookie.split('=')[0])
  t.equal(new URL(start.headers.get('location')!).searchParams.get('redirect_uri'), 'https://horde.example/auth/github/callback')
})

t.test('OAuth configuration is validated, naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ OAUTH_GITHUB_CLIENT_ID: 'x', SESSION_SECRET }, 'OAUTH_GITHUB_CLIENT_SECRET'],
    [{ OAUTH_DISCORD_CLIENT_SECRET: 'x', SESSION_SECRET }, 'OAUTH_DISCORD_CLIENT_ID'],
    [{ OAUTH_GOOGLE_CLIENT_ID: 'x', OAUTH_GOOGLE_CLIENT_SECRET: 'y' }, 'SESSION_SECRET'],
    [{ SESSION_SECRET: 'short' }, 'SESSION_SECRET'],
    [{ OAUTH_GITHUB_TOKEN_URL: 'ftp://x' }, 'OAUTH_GITHUB_TOKEN_URL'],
    [{ STATUS_PUSH_SECONDS: '0' }, 'STATUS_PUSH_SECONDS'],
  ]
  for (const [env, variable] of cases) {
    let thrown: unknown
    try { loadConfig(env) } catch (error) { thrown = error }
    t.ok(thrown instanceof ConfigError && thrown.variable === variable && thrown.message.includes(variable), `${variable} is named`)
  }
  const none = loadConfig({})
  t.same(none.web.oauth, {}, 'no provider without credentials')
  t.ok(none.web.sessionSecret.length >= 32, 'a random secret when nobody can log in')
  const github = loadConfig({ OAUTH_GITHUB_CLIENT_ID: 'id', OAUTH_GITHUB_CLIENT_SECRET: 's', SESSION_SECRET })
  t.equal(github.web.oauth.github?.authorizeUrl, 'https://github.com/login/oauth/authorize')
  t.equal(github.web.oauth.google, undefined)
})

t.test('safeNext never returns a path a browser reads as another host', async (t) => {
  // Dot segments resolve to `//host`: the answer itself must be checked, not only the input.
  for (const next of ['/.//evil.example/x', '/a/..//evil.example', '/%2e//evil.example', '/./%2e//evil.example']) {
    t.equal(safeNext(next), '/account', `${next} is refused`)
  }
  t.equal(safeNext('/account?before=5#ledger'), '/account?before=5#ledger', 'a path on this site is kept')
  t.equal(safeNext('/a/../playground'), '/playground', 'dot segments inside the site are fine')
})
