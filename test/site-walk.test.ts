/**
 * Every page in headless Chromium, on a desktop and on a 390×844 phone, as a user with a
 * worker online and some history: no horizontal overflow, no script error, no CSP
 * violation, charts drawn. Screenshots of each go to test-output/ (walk-<page>-<size>.png).
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { createDemoBackend } from '../src/clients/backends/demo.js'
import { WorkerClient } from '../src/clients/worker-client.js'
import { api, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { SESSION_SECRET, startFakeProvider } from './helpers/oauth-provider.js'

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const SHOTS = path.resolve('test-output')
const SIZES = [{ name: 'desktop', width: 1280, height: 900 }, { name: 'phone', width: 390, height: 844 }] as const

async function until<T>(what: string, read: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await read()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('every page fits a desktop and a phone, with no script error and no CSP violation', async (t) => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`The browser tests need Chromium at ${CHROMIUM}. Install it (Debian/Ubuntu: apt-get update && apt-get install -y chromium) or set CHROMIUM_PATH.`)
  fs.mkdirSync(SHOTS, { recursive: true })
  const redis = await startTestRedis(t)
  const provider = await startFakeProvider(t)
  const { broker, url } = await startBroker(t, { redis, env: { SESSION_SECRET, STATUS_PUSH_SECONDS: '0.5', ...provider.env('github') } })

  // A worker online and a few finished jobs, so that tables and charts have rows.
  const volunteer = await registerUser(url, 'volunteer-with-a-long-name')
  const worker = new WorkerClient({ url, key: volunteer.key, name: 'demo-worker-on-a-big-gpu', models: ['koboldcpp/Llama-3-8B', 'koboldcpp/LLaMA2-13B-Tiefighter'], maxLength: 512, maxContextLength: 4096, backend: createDemoBackend({ delayMs: 2 }), reconnect: false })
  await worker.start()
  t.teardown(() => worker.stop())
  for (let i = 0; i < 3; i++) {
    const submitted = await api(url, 'POST', '/v1/generate', { body: { prompt: `Tell me about kudos, part ${i}`, max_length: 30, models: ['koboldcpp/Llama-3-8B'] } })
    await until('a generation', async () => (await api(url, 'GET', `/v1/generate/${submitted.body.id}`, { headers: { 'x-request-capability': submitted.body.capability } })).body.state === 'done')
  }
  await grant(broker, volunteer.id, 40)

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  })
  t.teardown(() => browser.close())

  for (const size of SIZES) {
    const context = await browser.newContext({ viewport: { width: size.width, height: size.height } })
    const page: Page = await context.newPage()
    const problems: string[] = []
    page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`) })
    page.on('pageerror', (error) => problems.push(`error: ${error.message}`))
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        const list = ((window as unknown as { cspViolations?: string[] }).cspViolations ??= [])
        list.push(`${event.violatedDirective} ${event.blockedURI}`)
      })
    })

    async function visit(name: string, route: string, ready?: string): Promise<void> {
      await page.goto(url + route)
      if (ready) await page.locator(ready).first().waitFor({ timeout: 10_000 })
      await page.waitForLoadState('networkidle')
      const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: window.innerWidth }))
      t.ok(widths.scroll <= widths.view, `${name} on the ${size.name}: no horizontal overflow (${widths.scroll} in ${widths.view} px)`)
      const violations = await page.evaluate(() => (window as unknown as { cspViolations?: string[] }).cspViolations ?? [])
      t.same(violations, [], `${name} on the ${size.name}: no CSP violation`)
      await page.screenshot({ path: path.join(SHOTS, `walk-${name}-${size.name}.png`), fullPage: true })
    }

    await visit('login', '/login')
    const logIn = page.locator('header .session a', { hasText: 'Log in' })
    t.ok((await logIn.boundingBox())!.height < 30, `"Log in" stays on one line on the ${size.name}`)
    await visit('status', '/', '#chart-throughput .uplot')
    t.match(await page.locator('#workers').textContent(), /demo-worker-on-a-big-gpu/)
    await visit('models', '/models', '#served tbody tr')
    t.match(await page.locator('#served').textContent(), /koboldcpp\/Llama-3-8B/)
    await visit('workers', '/workers', '#worker-list [data-since]')
    const first = await page.locator('#worker-list [data-since]').first().textContent()
    await until('the uptime to count on', async () => (await page.locator('#worker-list [data-since]').first().textContent()) !== first)
    await visit('people', '/people', '#leaderboard')
    t.match(await page.locator('#leaderboard').textContent(), /volunteer-with-a-long-name/)
    await visit('profile', '/people/volunteer-with-a-long-name', '#profile-workers')
    await visit('playground', '/playground', '#estimate:not(:empty)')
    t.match(await page.locator('#model').textContent(), /koboldcpp\/Llama-3-8B \(1 worker/, 'served models, with workers')
    t.notMatch(await page.locator('#model').textContent(), /Mistral/, 'not the registry models nobody serves')
    await visit('run-a-worker', '/run-a-worker')
    t.match(await page.locator('#cmd-kobold').textContent(), new RegExp(`--url ${url}`), 'the commands name this broker')

    // Logged in (a new user per size): the account page, the balance chart, and a work-only key.
    const username = `alice-${size.name}`
    provider.as('github', { id: String(770 + SIZES.indexOf(size)), name: username })
    await page.goto(url + '/login')
    await page.getByRole('link', { name: 'Continue with GitHub' }).click()
    await page.waitForURL(`${url}/account`)
    await visit('account-new', '/account', '#chart-balance .uplot')
    t.ok(await page.locator('#earn').isVisible(), 'a user with 0 kudos is shown how to earn')
    t.ok((await page.locator('#earn').boundingBox())!.y < (await page.locator('#transfer').boundingBox())!.y, 'before the transfer form')
    const alice = (await broker.services.accounts.byName(username))!
    await grant(broker, alice.id, 12)
    await visit('account', '/account', '#chart-balance .uplot')
    await page.getByLabel('Amount').fill('abc')
    await page.getByLabel('To (username)').fill('volunteer-with-a-long-name')
    await page.getByRole('button', { name: 'Send' }).click()
    const message = await page.getByLabel('Amount').evaluate((input) => (input as HTMLInputElement).validationMessage)
    t.match(message, /amount of kudos like 12 or 12\.5/, 'the field says what is wrong')
    t.notMatch(message, /Please match the requested format/)

    await visit('run-a-worker-in', '/run-a-worker')
    await page.getByRole('button', { name: 'Create a work-only key' }).click()
    await page.waitForURL(/\/run-a-worker\?key=/)
    const key = (await page.locator('#new-key-text').textContent())!
    t.match(await page.locator('#cmd-demo').textContent(), key, 'the new key is filled into the commands')
    await page.screenshot({ path: path.join(SHOTS, `walk-run-a-worker-key-${size.name}.png`), fullPage: true })
    const me = await api(url, 'GET', '/v1/users/me', { key })
    t.equal(me.status, 403, 'a work-only key: it does not read the account')
    t.equal(me.body.error.code, 'insufficient_scope')
    t.equal((await api(url, 'GET', '/api/v2/find_user', { headers: { apikey: key } })).status, 200, 'and it is a live key of its user')
    await page.reload()
    t.equal(await page.locator('#new-key-text').count(), 0, 'a reload shows no key and makes none')
    t.equal((await broker.services.accounts.listKeys(alice.id)).filter((k) => k.scopes.includes('work')).length, 1)

    t.same(problems, [], `no script errors on the ${size.name}`)
    await context.close()
  }

  // An API key opens the account page too, without OAuth.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
  const page = await context.newPage()
  await page.goto(url + '/login')
  await page.getByLabel('API key').fill(volunteer.key)
  await page.getByRole('button', { name: 'Log in with the key' }).click()
  await page.waitForURL(`${url}/account`)
  t.equal(await page.locator('h1').textContent(), 'volunteer-with-a-long-name')
  await context.close()
})
