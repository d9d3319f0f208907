import t from 'tap'
import { execute } from './helpers/database.js'
import { api, balanceOf, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { CookieClient, csrfOf, SESSION_SECRET, startFakeProvider } from './helpers/oauth-provider.js'

async function loggedIn(t: Parameters<typeof startTestRedis>[0]) {
  const redis = await startTestRedis(t)
  const provider = await startFakeProvider(t)
  const started = await startBroker(t, { redis, env: { SESSION_SECRET, ...provider.env('discord') } })
  provider.as('discord', { id: '1001', name: 'alice' })
  const browser = new CookieClient(started.url)
  const first = await browser.follow('/auth/discord/login')
  const me = await browser.request('/v1/users/me').then((r) => r.json())
  return { ...started, provider, browser, me, page: await first.response.text() }
}

const rows = (page: string, section: string) => {
  const body = new RegExp(`id="${section}"[\\s\\S]*?<tbody>([\\s\\S]*?)</tbody>`).exec(page)?.[1] ?? ''
  return [...body.matchAll(/<tr(?: class="[^"]*")?>/g)].length
}

t.test('the account page needs a login, shows the balance, categories, logins and workers', async (t) => {
  const { broker, url, browser, me, page, provider, database } = await loggedIn(t)
  const anonymous = await fetch(url + '/account?before=3', { redirect: 'manual' })
  t.equal(anonymous.status, 303)
  t.equal(anonymous.headers.get('location'), '/login?next=%2Faccount%3Fbefore%3D3')
  t.match(provider.authorizeCalls.at(-1)!.get('scope'), 'identify')
  t.equal(provider.authorizeCalls.at(-1)!.get('code_challenge'), null, 'no PKCE for Discord')

  t.match(page, /<h1>alice<\/h1>/)
  t.match(page, /id="balance">0</)
  t.match(page, /Discord as <strong>alice<\/strong>/)
  t.equal(page.match(/name="_csrf"/g)!.length >= 3, true, 'every form carries the CSRF token')

  // A worker with years of history, written straight into the database: no store operation
  // fabricates counters, and the page is what is under test.
  await execute(database, 'insert into workers (name, owner_id, created_at, last_seen_at, uptime_ms, jobs, tokens, earned) values (?, ?, ?, ?, ?, ?, ?, ?)',
    ['gpu-<1>', me.id, Date.now(), Date.now(), 2 * 3600_000 + 5 * 60_000, 12, 3400, 157_860])
  await grant(broker, me.id, 42)
  const again = await browser.request('/account').then((r) => r.text())
  t.match(again, /gpu-&lt;1&gt;/, 'worker names are escaped')
  t.match(again, /2h 5m/)
  t.match(again, /157\.86/)
  t.match(again, /id="balance">42</)
  t.match(again, /data-category="awarded">42</)
  t.equal(rows(again, 'ledger'), 1)
})

t.test('API keys: created from the page, shown once, usable, revocable', async (t) => {
  const { url, browser, page } = await loggedIn(t)
  const created = await browser.post('/account/keys', { _csrf: csrfOf(page), name: 'my-bot', scopes: ['read', 'transfer'] })
  t.match(created.url, /\/account\?flash=[A-Za-z0-9_-]{22}(#keys)?$/, 'post/redirect/get: the answer is a GET of the account page')
  t.equal(created.response.status, 200)
  const shown = await created.response.text()
  const key = /<code class="key">(hb_[^<]+)<\/code>/.exec(shown)?.[1]
  t.ok(key, 'the new key is in the answer')
  t.equal(created.response.headers.get('cache-control'), 'no-store')
  const me = await api(url, 'GET', '/v1/users/me', { key })
  t.same(me.body.scopes.sort(), ['read', 'transfer'])

  const reloaded = await browser.request(created.url.replace(url, '')).then((r) => r.text())
  t.notOk(reloaded.includes(key!), 'a reload of that answer does not show it again')
  t.equal((reloaded.match(/<td>my-bot<\/td>/g) ?? []).length, 1, 'and makes no second key')
  const later = await browser.request('/account').then((r) => r.text())
  t.notOk(later.includes(key!), 'never shown again')
  t.match(later, /my-bot/)

  const bad = await browser.post('/account/keys', { _csrf: csrfOf(page), name: '', scopes: ['read'] })
  t.match(bad.url, /\/account\?flash=/, 'an error is redirected too')
  t.match(await bad.response.text(), /Key name must be 1-64 characters/)
  const noScope = await browser.post('/account/keys', { _csrf: csrfOf(page), name: 'x' })
  t.match(await noScope.response.text(), /id="notice"/)
  t.notMatch(await browser.request('/account').then((r) => r.text()), /name="name"[^>]*value="x"|<td>x<\/td>/, 'and no key was made')

  const forged = await browser.post('/account/keys', { name: 'evil', scopes: ['all'] })
  t.equal(forged.response.status, 403, 'a form without the CSRF token is refused')
  t.match(await forged.response.text(), /did not come from this site/)
  const wrong = await browser.post('/account/keys', { _csrf: 'x'.repeat(43), name: 'evil', scopes: ['all'] })
  t.equal(wrong.response.status, 403)

  const id = /action="\/account\/keys\/(\d+)\/revoke"/.exec(later)![1]
  const revoked = await browser.post(`/account/keys/${id}/revoke`, { _csrf: csrfOf(page) })
  t.match(await revoked.response.text(), /The key was revoked/)
  t.equal((await api(url, 'GET', '/v1/users/me', { key })).status, 401)
  const twice = await browser.post(`/account/keys/${id}/revoke`, { _csrf: csrfOf(page) })
  t.match(await twice.response.text(), /No such active key/)
})

t.test('the transfer form is idempotent like REST and shows errors with the form kept', async (t) => {
  const { broker, url, browser, me, page } = await loggedIn(t)
  const bob = await registerUser(url, 'bob')
  await grant(broker, me.id, 100)
  const idem = /name="idempotency_key" value="([^"]+)"/.exec(page)![1]
  t.match(idem, /^[0-9a-f-]{36}$/, 'the form carries a generated idempotency key')

  const form = { _csrf: csrfOf(page), idempotency_key: idem, to: 'bob', amount: '12.5', memo: '<script>alert(1)</script>' }
  const sent = await browser.post('/account/transfer', form)
  t.match(sent.url, /\/account\?sent=\d+$/)
  const after = await sent.response.text()
  t.match(after, /Sent 12\.5 kudos to bob/)
  t.match(after, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'memos are escaped')
  t.notMatch(after, /<script>alert/)
  t.equal(await balanceOf(broker, me.id), 87.5)
  t.equal(await balanceOf(broker, bob.id), 12.5)

  const replay = await browser.post('/account/transfer', form)
  t.match(replay.url, /\/account\?sent=\d+$/, 'a double submit answers like the first')
  t.equal(await balanceOf(broker, me.id), 87.5, 'and moves nothing')
  const conflict = await browser.post('/account/transfer', { ...form, amount: '13' })
  t.match(conflict.url, /\/account\?flash=/)
  t.notMatch(await conflict.response.text(), new RegExp(`value="${idem}"`), 'a key that moved other kudos is replaced')
  t.equal(await balanceOf(broker, bob.id), 12.5)

  const fresh = /name="idempotency_key" value="([^"]+)"/.exec(after)![1]
  t.not(fresh, idem, 'the next form has a new key')
  const tooMuch = await browser.post('/account/transfer', { _csrf: csrfOf(page), idempotency_key: fresh, to: 'bob', amount: '1000', memo: '' })
  t.match(tooMuch.url, /\/account\?flash=/, 'post/redirect/get, with the form kept')
  const kept = await tooMuch.response.text()
  t.match(kept, /Amount exceeds your positive balance/)
  t.match(kept, new RegExp(`name="idempotency_key" value="${fresh}"`), 'the same key stays with the form')
  t.match(kept, /name="amount"[^>]*value="1000"/)

  const elsewhere = await browser.request(`/account?sent=${/sent=(\d+)/.exec(sent.url)![1]}`).then((r) => r.text())
  t.match(elsewhere, /Sent 12\.5/)
  const bobView = await api(url, 'GET', '/v1/users/me/ledger', { key: bob.key })
  t.equal(bobView.body.entries[0].amount, 12.5)
})

t.test('ledger history pages', async (t) => {
  const { broker, browser, me } = await loggedIn(t)
  for (let i = 0; i < 30; i++) await grant(broker, me.id, i + 1)
  const first = await browser.request('/account').then((r) => r.text())
  t.equal(rows(first, 'ledger'), 25)
  const older = /href="(\/account\?before=\d+)#ledger" rel="next"/.exec(first)?.[1]
  t.ok(older, 'a link to older entries')
  const second = await browser.request(older!).then((r) => r.text())
  t.equal(rows(second, 'ledger'), 5)
  t.notMatch(second, /rel="next"/)
  t.match(second, /href="\/account#ledger">Newest/)
})

t.test('login and playground pages', async (t) => {
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const login = await fetch(url + '/login').then((r) => r.text())
  t.match(login, /No login provider is configured/)
  const playground = await fetch(url + '/playground').then((r) => r.text())
  t.match(playground, /shared Anonymous account/)
  t.notMatch(playground, /<option value="koboldcpp\/Llama-3-8B"/, 'only models served now')
  t.match(playground, /id="no-workers"/, 'and says when nothing is served')
  t.match(playground, /src="\/static\/playground.js"/)
  const css = await fetch(url + '/static/app.css')
  t.equal(css.headers.get('content-type'), 'text/css; charset=utf-8')
  const lost = await fetch(url + '/nowhere<x>', { headers: { accept: 'text/html' } })
  t.equal(lost.status, 404)
  t.match(await lost.text(), /There is no page at \/nowhere%3Cx%3E|There is no page at \/nowhere&lt;x&gt;/)
  t.match(lost.headers.get('content-security-policy') ?? '', /default-src 'self'/)
  const api404 = await fetch(url + '/v1/nowhere', { headers: { accept: 'text/html' } })
  t.equal((await api404.json()).error.code, 'not_found', 'the API answers JSON')
  const formWithoutLogin = await fetch(url + '/account/keys', { method: 'POST', redirect: 'manual', body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(formWithoutLogin.headers.get('location'), '/login?next=%2Faccount')
  const oops = await fetch(url + '/auth/github/login')
  t.equal(oops.status, 404)
  t.match(await oops.text(), /not configured here/)
})
