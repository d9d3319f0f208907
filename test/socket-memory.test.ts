/**
 * A socket lives for hours; its upgrade request must not. Once a worker's or client's socket
 * is open, nothing in the broker may still reach the HTTP request it was upgraded from (the
 * request, its response stand-in, headers and reply): on 15,000 idle workers that was about
 * 3 KB each (docs/performance.md, "Memory per idle worker").
 */
import t from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { IncomingMessage } from 'node:http'
import { client, rawWorker } from './helpers/pipeline.js'
import type { Peer } from './helpers/ws.js'
import { registerUser, sleep, startBroker, startTestRedis } from './helpers/harness.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

t.test('an open worker or client socket keeps nothing of its upgrade request', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, url, wsUrl } = await startBroker(t, { redis })
  const upgrades: Array<WeakRef<IncomingMessage>> = []
  broker.app.server.on('upgrade', (request: IncomingMessage) => upgrades.push(new WeakRef(request)))

  const owner = await registerUser(url, 'memory-owner')
  const peers: Peer[] = []
  for (let i = 0; i < 5; i++) peers.push(await rawWorker(wsUrl, owner.key, { name: `memory-w${i}` }))
  for (let i = 0; i < 5; i++) peers.push(await client(wsUrl, owner.key))
  t.teardown(() => { for (const peer of peers) peer.close() })
  t.equal(upgrades.length, 10, 'ten upgrades seen')

  let kept = upgrades.length
  for (let round = 0; round < 10 && kept > 0; round++) {
    await sleep(50)
    gc()
    kept = upgrades.filter((ref) => ref.deref() !== undefined).length
  }
  t.equal(kept, 0, 'no upgrade request is still reachable while its socket stays open')
  // The sockets are still in use: the requests were dropped, not the connections.
  peers[9].send({ type: 'attach', id: 'a', request: '00000000-0000-0000-0000-000000000000' })
  const answer = await peers[9].next((f) => f.id === 'a')
  t.equal(answer.type, 'error', 'an open client socket still answers')
})
