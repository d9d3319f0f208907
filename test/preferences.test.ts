import t from 'tap'
import { registerUser, setBalance, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

t.test('a worker serves its owner, then its priority users (even in debt), then kudos order; other workers do not', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const [owner, family, rich, otherOwner] = await Promise.all(['owner', 'family', 'rich', 'other'].map((n) => registerUser(url, n)))
  await setBalance(broker, family.id, -500)
  await setBalance(broker, rich.id, 1000)
  await setBalance(broker, owner.id, -50)
  const fav = await rawWorker(wsUrl, owner.key, { name: 'fav', priority_usernames: ['family', 'ghost'] })
  const plain = await rawWorker(wsUrl, otherOwner.key, { name: 'plain' })
  t.teardown(() => { fav.close(); plain.close() })
  t.same(fav.frames.find((f) => f.type === 'ready').unknown_priority_users, ['ghost'], 'unknown names are reported back')
  const [sOwner, sFamily, sRich] = await Promise.all([client(wsUrl, owner.key), client(wsUrl, family.key), client(wsUrl, rich.key)])
  t.teardown(() => { sOwner.close(); sFamily.close(); sRich.close() })

  // Occupy both workers.
  const busy1 = await submit(sRich, {})
  const busy2 = await submit(sRich, {})
  const busyFav = await fav.next('job')
  const busyPlain = await plain.next('job')
  t.same([busyFav.forRequest, busyPlain.forRequest].sort(), [busy1, busy2].sort(), 'both workers busy')

  const richWaiting = await submit(sRich, {})
  const familyWaiting = await submit(sFamily, {})
  const ownerWaiting = await submit(sOwner, {})
  const familySecond = await submit(sFamily, {})

  // The plain worker frees first: kudos order, the rich user's request.
  serve(plain, busyPlain.job, ['.'])
  t.equal((await plain.next((f) => f.type === 'job' && f.job !== busyPlain.job)).forRequest, richWaiting, 'the plain worker takes the richest request')
  // The favouring worker frees: its owner first (in debt, but its own), then family in submission order.
  serve(fav, busyFav.job, ['.'])
  const next1 = await fav.next((f) => f.type === 'job' && f.job !== busyFav.job)
  t.equal(next1.forRequest, ownerWaiting, 'owner first')
  serve(fav, next1.job, ['.'])
  const next2 = await fav.next((f) => f.type === 'job' && f.forRequest === familyWaiting)
  t.ok(next2, 'then the priority user, despite -500 kudos')
  serve(fav, next2.job, ['.'])
  const next3 = await fav.next((f) => f.type === 'job' && f.forRequest === familySecond)
  t.ok(next3, 'then the priority user\'s second request, in submission order')
})

t.test('a preferred request is not held back when another worker is free', async (t) => {
  const redis = await startTestRedis(t)
  const { broker, wsUrl, url } = await startBroker(t, { redis })
  const [owner, family, other] = await Promise.all(['owner', 'family', 'other'].map((n) => registerUser(url, n)))
  await setBalance(broker, family.id, -100)
  const fav = await rawWorker(wsUrl, owner.key, { name: 'fav', priority_usernames: ['family'] })
  const sOwner = await client(wsUrl, owner.key)
  const sFamily = await client(wsUrl, family.key)
  t.teardown(() => { fav.close(); sOwner.close(); sFamily.close() })
  const busy = await submit(sOwner, {})
  t.equal((await fav.next('job')).forRequest, busy)
  const waiting = await submit(sFamily, {})
  const idle = await rawWorker(wsUrl, other.key, { name: 'idle' })
  t.teardown(() => idle.close())
  t.equal((await idle.next('job')).forRequest, waiting, 'the free worker takes it at once')
})
