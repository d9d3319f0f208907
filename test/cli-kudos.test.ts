import net from 'node:net'
import t from 'tap'
import { runBalance, runTransfer, type CliIo } from '../scripts/cli/kudos.js'
import { balanceOf, grant, registerUser, startBroker, startTestRedis } from './helpers/harness.js'

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = []
  const stderr: string[] = []
  return { stdout, stderr, out: (line) => stdout.push(line), err: (line) => stderr.push(line) }
}

async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('horde transfer and horde balance against a real broker', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url } = await startBroker(t, { redis })
  const alice = await registerUser(url, 'alice')
  const bob = await registerUser(url, 'bob')
  await grant(broker, alice.id, 100)
  const env = { HORDE_URL: url, HORDE_API_KEY: alice.key }

  await t.test('a transfer prints one line and moves the amount', async (t) => {
    const io = capture()
    t.equal(await runTransfer(['bob', '2.5', '--memo', 'for the review'], env, io), 0)
    t.match(io.stdout, [/^Sent 2\.5 kudos to bob \(transfer \d+\)\.$/])
    t.same(io.stderr, [])
    t.equal(await balanceOf(broker, bob.id), 2.5)
    const memo = (await broker.services.store.transfers.latest())!
    t.equal(memo.memo, 'for the review')
  })

  await t.test('a recipient by id, flags over the environment', async (t) => {
    const io = capture()
    t.equal(await runTransfer([`#${bob.id}`, '1', '--url', url, '--key', alice.key], { HORDE_URL: 'http://127.0.0.1:1', HORDE_API_KEY: 'wrong' }, io), 0)
    t.equal(await balanceOf(broker, bob.id), 3.5)
  })

  await t.test('the same --idempotency-key twice sends once', async (t) => {
    const first = capture()
    const second = capture()
    t.equal(await runTransfer(['bob', '4', '--idempotency-key', 'cli-once'], env, first), 0)
    t.equal(await runTransfer(['bob', '4', '--idempotency-key', 'cli-once'], env, second), 0)
    t.match(second.stdout, [/^Already sent 4 kudos to bob \(transfer \d+\); nothing moved this time\.$/])
    t.equal(await balanceOf(broker, bob.id), 7.5)
  })

  await t.test('--json prints the transfer as the broker answered it', async (t) => {
    const io = capture()
    t.equal(await runTransfer(['bob', '0.001', '--json'], env, io), 0)
    const result = JSON.parse(io.stdout[0])
    t.match(result, { amount: 0.001, to: { username: 'bob' }, replayed: false })
  })

  await t.test('the broker\'s refusals exit 1 with its code', async (t) => {
    for (const [args, code] of [
      [['bob', '1000'], 'insufficient_kudos'],
      [['bob', '1.0001'], 'invalid_amount'],
      [['nobody', '1'], 'unknown_user'],
      [['alice', '1'], 'self_transfer'],
    ] as Array<[string[], string]>) {
      const io = capture()
      t.equal(await runTransfer(args, env, io), 1, args.join(' '))
      t.match(io.stderr, [new RegExp(`^horde: ${code}: `)])
      t.same(io.stdout, [])
    }
    const io = capture()
    t.equal(await runBalance([], { ...env, HORDE_API_KEY: 'hb_' + 'a'.repeat(12) + '_' + 'b'.repeat(32) }, io), 1)
    t.match(io.stderr, [/^horde: unauthorized: /])
    t.equal(await balanceOf(broker, alice.id), 100 - 7.501)
  })

  await t.test('usage errors exit 2 and say how to call', async (t) => {
    for (const [args, environment, message] of [
      [['bob'], env, /needs a recipient and an amount/],
      [['bob', '1', 'extra'], env, /unexpected argument/],
      [['bob', 'lots'], env, /not an amount/],
      [['bob', '1', '--colour'], env, /Unknown option/],
      [['bob', '1'], { HORDE_URL: url }, /no API key/],
      [['bob', '1'], { ...env, HORDE_URL: 'ftp://example' }, /not an http/],
    ] as Array<[string[], Record<string, string>, RegExp]>) {
      const io = capture()
      t.equal(await runTransfer(args, environment, io), 2, args.join(' '))
      t.match(io.stderr[0], message)
      t.match(io.stderr[1], /^usage: horde transfer/)
    }
    const io = capture()
    t.equal(await runBalance(['extra'], env, io), 2)
    t.match(io.stderr[1], /^usage: horde balance/)
  })

  await t.test('balance prints one line, or JSON', async (t) => {
    const io = capture()
    t.equal(await runBalance([], env, io), 0)
    t.same(io.stdout, ['alice: 92.499 kudos'])
    const json = capture()
    t.equal(await runBalance(['--json'], { HORDE_URL: url }, capture()), 2, 'no key is a usage error')
    t.equal(await runBalance(['--json', '--key', bob.key], { HORDE_URL: url }, json), 0)
    t.match(JSON.parse(json.stdout[0]), { username: 'bob', kudos: 7.501, totals: { received: 7.501 } })
  })

  await t.test('an unreachable broker exits 3', async (t) => {
    const port = await closedPort()
    const io = capture()
    t.equal(await runTransfer(['bob', '1'], { HORDE_URL: `http://127.0.0.1:${port}`, HORDE_API_KEY: alice.key }, io), 3)
    t.match(io.stderr, [/cannot reach the broker at http:\/\/127\.0\.0\.1:\d+/])
    t.equal(await runBalance([], { HORDE_URL: `http://127.0.0.1:${port}/`, HORDE_API_KEY: alice.key }, capture()), 3)
  })
})
