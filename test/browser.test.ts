/**
 * The pages in a real browser: headless Chromium driven by playwright-core, logging in
 * through the loopback OAuth provider. Screenshots of each page go to test-output/.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { WorkerClient } from '../src/clients/worker-client.js'
import { createDemoBackend } from '../src/clients/backends/demo.js'
import { chromium, type Browser, type BrowserContext, type Page, type WebSocketRoute } from 'playwright-core'
import { grant, registerUser, startBroker, startTestRedis, type TestBroker, type TestLike } from './helpers/harness.js'
import { SESSION_SECRET, startFakeProvider, type FakeProvider } from './helpers/oauth-provider.js'

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const SHOTS = path.resolve('test-output')

async function launch(t: TestLike): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`The browser tests need Chromium at ${CHROMIUM}. Install it (Debian/Ubuntu: apt-get update && apt-get install -y chromium) or set CHROMIUM_PATH.`)
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  fs.mkdirSync(SHOTS, { recursive: true })
  return browser
}

/** A browser context whose page records CSP violations and script errors. */
async function open(browser: Browser): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (message) => { if (message.type() === 'error' && !/WebSocket connection/.test(message.text())) problems.push(message.text()) })
  page.on('pageerror', (error) => problems.push(error.message))
  return { context, page, problems }
}

async function setUp(t: TestLike): Promise<TestBroker & { provider: FakeProvider; browser: Browser }> {
  const browser = await launch(t)
  const redis = await startTestRedis(t)
  const provider = await startFakeProvider(t)
  const started = await startBroker(t, { redis, env: { SESSION_SECRET, STATUS_PUSH_SECONDS: '0.3', ...provider.env('github'), ...provider.env('google') } })
  return { ...started, provider, browser }
}

async function logIn(page: Page, url: string, provider: 'GitHub' | 'Google'): Promise<void> {
  await page.goto(url + '/login')
  await page.getByRole('link', { name: `Continue with ${provider}` }).click()
  await page.waitForURL(`${url}/account`)
}

const balance = (page: Page) => page.locator('#balance').textContent()

t.test('log in, create an API key, send kudos and watch both balances and the live status', async (t) => {
  const { browser, provider, url, broker } = await setUp(t)
  provider.as('github', { id: '31', name: 'alice' })
  provider.as('google', { id: 'g-32', name: 'Bob Builder' })

  const alice = await open(browser)
  await alice.page.goto(url + '/login')
  await alice.page.screenshot({ path: path.join(SHOTS, 'login.png'), fullPage: true })
  await logIn(alice.page, url, 'GitHub')
  t.equal(await alice.page.locator('h1').textContent(), 'alice')
  const aliceId = (await broker.services.accounts.byName('alice'))!.id
  await grant(broker, aliceId, 100)
  await alice.page.reload()
  t.equal(await balance(alice.page), '100')

  await alice.page.getByLabel('Name', { exact: true }).fill('my-bot')
  await alice.page.getByLabel('all', { exact: true }).uncheck()
  await alice.page.getByLabel('read', { exact: true }).check()
  await alice.page.getByRole('button', { name: 'Create key' }).click()
  const key = await alice.page.locator('#new-key code').textContent()
  t.match(key, /^hb_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{32}$/, 'the new key is shown')
  t.match(await alice.page.locator('#keys tbody').textContent(), /my-bot/)

  const bob = await open(browser)
  await logIn(bob.page, url, 'Google')
  t.equal(await bob.page.locator('h1').textContent(), 'Bob_Builder')
  t.equal(await balance(bob.page), '0')

  await alice.page.goto(url + '/account')
  t.notOk((await alice.page.content()).includes(key!), 'the key is not shown again')
  await alice.page.getByLabel('To (username)').fill('Bob_Builder')
  await alice.page.getByLabel('Amount').fill('30')
  await alice.page.getByLabel('Memo').fill('for the <b>bricks</b>')
  await alice.page.getByRole('button', { name: 'Send' }).click()
  await alice.page.waitForURL(/\/account\?sent=\d+/)
  t.match(await alice.page.locator('#notice').textContent(), /Sent 30 kudos to Bob_Builder/)
  t.equal(await balance(alice.page), '70', 'the sender sees the balance go down')
  t.match(await alice.page.locator('#ledger tbody tr').first().textContent(), /for the <b>bricks<\/b>/, 'the memo shows as text')
  await alice.page.screenshot({ path: path.join(SHOTS, 'account.png'), fullPage: true })

  await bob.page.reload()
  t.equal(await balance(bob.page), '30', 'the recipient sees the balance go up')
  t.match(await bob.page.locator('#ledger tbody tr').first().textContent(), /alice/)

  // The status page updates over its socket, without a reload.
  await alice.page.goto(url + '/')
  await alice.page.locator('#live[data-state="live"]').waitFor()
  await alice.page.evaluate(() => { (window as unknown as { marker: number }).marker = 1 })
  t.match(await alice.page.locator('#top tr').first().textContent(), /alice/)
  await grant(broker, (await broker.services.accounts.byName('Bob_Builder'))!.id, 1000)
  await alice.page.waitForFunction(() => document.querySelector('#top tr')?.textContent?.includes('Bob_Builder'), undefined, { timeout: 5000 })
  t.equal(await alice.page.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'the page was not reloaded')
  t.match(await alice.page.locator('#top tr').first().textContent(), /1,030/)
  await alice.page.screenshot({ path: path.join(SHOTS, 'home.png'), fullPage: true })

  t.same([...alice.problems, ...bob.problems], [], 'no script errors and no CSP violations')
})

t.test('the playground shows queue position, streams, discards a restarted attempt, and cancels', async (t) => {
  const { browser, url } = await setUp(t)
  const { page, problems } = await open(browser)
  const frames: any[] = []
  let socket: WebSocketRoute | undefined
  // A scripted /v1/client speaking the client protocol, so this test does not wait for the pipeline.
  await page.routeWebSocket(/\/v1\/client$/, (ws) => {
    socket = ws
    ws.onMessage((message) => frames.push(JSON.parse(String(message))))
  })
  const send = (frame: object) => socket!.send(JSON.stringify(frame))
  const nextFrame = async (n: number) => { while (frames.length < n) await page.waitForTimeout(10); return frames[n - 1] }

  await page.goto(url + '/playground')
  await page.getByLabel('Prompt').fill('Once upon a time')
  await page.getByLabel('Max tokens').fill('50')
  await page.getByRole('button', { name: 'Generate' }).click()
  const submit = await nextFrame(1)
  t.match(submit, { type: 'submit', prompt: 'Once upon a time', max_length: 50, max_context_length: 2048, params: { temperature: 0.7, top_k: 100 } })
  t.notOk('models' in submit, 'any model served now: none named')

  send({ type: 'accepted', id: submit.id, request: 'r1' })
  send({ type: 'queued', request: 'r1', position: 2, is_possible: true, eta_seconds: 40 })
  await page.locator('#queue', { hasText: 'Position 3 in the queue, about 40s to wait.' }).waitFor()
  send({ type: 'queued', request: 'r1', position: 0, is_possible: true, eta_seconds: 5 })
  await page.locator('#queue', { hasText: 'Position 1' }).waitFor()
  send({ type: 'started', request: 'r1', attempt: 1, worker: 'w1', model: 'koboldcpp/Llama-3-8B' })
  send({ type: 'chunk', request: 'r1', attempt: 1, seq: 0, text: 'lost text' })
  await page.locator('#output', { hasText: 'lost text' }).waitFor()
  send({ type: 'restarted', request: 'r1', attempt: 2 })
  send({ type: 'chunk', request: 'r1', attempt: 1, seq: 1, text: ' late frame of the dead attempt' })
  send({ type: 'started', request: 'r1', attempt: 2, worker: 'w2', model: 'koboldcpp/Llama-3-8B' })
  send({ type: 'chunk', request: 'r1', attempt: 2, seq: 0, text: ', there was' })
  await page.locator('#output', { hasText: ', there was' }).waitFor()
  t.equal(await page.locator('#output').textContent(), ', there was', 'the restarted attempt started from nothing')
  t.equal(await page.locator('#state').textContent(), 'streaming')
  send({ type: 'chunk', request: 'r1', attempt: 2, seq: 1, text: ' a horde.' })
  send({ type: 'done', request: 'r1', text: ', there was a horde.', tokens: 5, kudos: 0.53 })
  await page.locator('#state[data-state="done"]').waitFor()
  t.equal(await page.locator('#output').textContent(), ', there was a horde.')
  t.match(await page.locator('#summary').textContent(), /Worker w2 · koboldcpp\/Llama-3-8B · 5 tokens · 0\.53 kudos/, 'worker, model and cost kept in the summary')
  await page.screenshot({ path: path.join(SHOTS, 'playground.png'), fullPage: true })

  await page.getByRole('button', { name: 'Generate' }).click()
  const second = await nextFrame(2)
  send({ type: 'accepted', id: second.id, request: 'r2' })
  send({ type: 'queued', request: 'r2', position: 7, is_possible: false, eta_seconds: 0 })
  await page.locator('#queue', { hasText: 'No worker online serves this request right now.' }).waitFor()
  t.notMatch(await page.locator('#queue').textContent(), /to wait/, 'no ETA when nothing can serve it')
  await page.getByRole('button', { name: 'Cancel' }).click()
  const cancel = await nextFrame(3)
  t.match(cancel, { type: 'cancel', request: 'r2' })
  send({ type: 'cancelled', request: 'r2', text: '', tokens: 0, kudos: 0 })
  await page.locator('#state[data-state="cancelled"]').waitFor()
  t.match(await page.locator('#summary').textContent(), /Cancelled before a worker started · 0 kudos/, 'a cancelled request shows its cost')
  t.equal(await page.getByRole('button', { name: 'Generate' }).isEnabled(), true, 'ready for the next prompt')

  await page.getByRole('button', { name: 'Generate' }).click()
  const third = await nextFrame(4)
  send({ type: 'error', id: third.id, code: 'too_many_active', message: 'Too many requests waiting or running' })
  await page.locator('#summary', { hasText: 'Refused: Too many requests waiting or running (too_many_active)' }).waitFor()
  t.same(problems, [], 'no script errors and no CSP violations')
})

t.test('the playground end to end through the broker\'s /v1/client', async (t) => {
  const { browser, provider, url, broker } = await setUp(t)
  provider.as('github', { id: '41', name: 'carol' })
  const { page, problems } = await open(browser)
  await logIn(page, url, 'GitHub')
  await page.goto(url + '/playground')
  t.match(await page.locator('main p.muted').first().textContent(), /carol/)
  await page.getByLabel('Prompt').fill('Tell me about kudos')
  await page.getByRole('button', { name: 'Generate' }).click()
  // No worker is connected: the request waits in the queue until it is cancelled.
  await page.locator('#queue', { hasText: 'Position 1' }).waitFor({ timeout: 10_000 })
  await page.getByRole('button', { name: 'Cancel' }).click()
  await page.locator('#state[data-state="cancelled"]').waitFor({ timeout: 10_000 })

  // Now with the reference worker (demo backend, a word every 20 ms): the text streams in.
  const owner = await registerUser(url, 'volunteer')
  const worker = new WorkerClient({ url, key: owner.key, name: 'demo-worker', models: ['koboldcpp/Llama-3-8B'], maxLength: 512, maxContextLength: 4096, backend: createDemoBackend({ delayMs: 20 }), reconnect: false })
  await worker.start()
  t.teardown(() => worker.stop())
  await page.reload() // the model list is the models served now
  await page.getByLabel('Prompt').fill('Tell me about kudos')
  await page.getByLabel('Model').selectOption('koboldcpp/Llama-3-8B')
  await page.getByLabel('Max tokens').fill('40')
  await page.getByRole('button', { name: 'Generate' }).click()
  await page.locator('#state[data-state="streaming"]').waitFor({ timeout: 10_000 })
  const partial = (await page.locator('#output').textContent()) ?? ''
  await page.locator('#state[data-state="done"]').waitFor({ timeout: 20_000 })
  const full = (await page.locator('#output').textContent()) ?? ''
  t.ok(partial.length < full.length, `the text appeared piece by piece (${partial.length} then ${full.length} characters)`)
  const request = (await broker.services.store.requests.latest({ state: 'done' }))!
  t.equal(full, request.text, 'the page shows exactly the text the broker settled')
  t.equal(request.tokens, 40)
  await page.screenshot({ path: path.join(SHOTS, 'playground-streamed.png'), fullPage: true })
  t.same(problems, [], 'no script errors and no CSP violations')
})
