import t from 'tap'
import { registerUser, setBalance, startBroker, startTestRedis } from './helpers/harness.js'
import { client, rawWorker, serve, submit } from './helpers/pipeline.js'

for (const bonus of [0, 1000]) {
  t.test(`ageing bonus ${bonus}: ${bonus ? 'a long wait outweighs kudos' : 'strict kudos order (the default)'}`, async (t) => {
    const redis = await startTestRedis(t)
    let offset = 0
    const { broker, wsUrl, url } = await startBroker(t, { redis, wallClock: () => Date.now() + offset, env: bonus ? { KUDOS_AGEING_BONUS: String(bonus) } : {} })
    const [owner, debtor, rich] = await Promise.all(['owner', 'debtor', 'rich'].map((n) => registerUser(url, n)))
    await setBalance(broker, debtor.id, -500)
    await setBalance(broker, rich.id, 1000)
    const worker = await rawWorker(wsUrl, owner.key, { name: 'w' })
    const [sOwner, sDebtor, sRich] = await Promise.all([client(wsUrl, owner.key), client(wsUrl, debtor.key), client(wsUrl, rich.key)])
    t.teardown(() => { worker.close(); sOwner.close(); sDebtor.close(); sRich.close() })
    const busy = await submit(sOwner, {})
    const busyJob = await worker.next('job')
    t.equal(busyJob.forRequest, busy)
    const old = await submit(sDebtor, {})
    offset += 120_000 // two minutes later
    const fresh = await submit(sRich, {})
    await broker.core.reprioritizer.ageAll()
    serve(worker, busyJob.job, ['.'])
    const next = await worker.next((f) => f.type === 'job' && f.forRequest !== busy)
    t.equal(next.forRequest, bonus ? old : fresh, bonus ? '12 x 1000 kudos of waiting beat a 1500-kudo gap' : 'the richer request goes first')
  })
}
