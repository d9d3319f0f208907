import t from 'tap'
import { registerUser, startBroker, startTestRedis } from './helpers/harness.js'
import { connect } from './helpers/ws.js'

t.test('worker names that could pass for another are refused with a coded error', async (t) => {
  const { url, wsUrl } = await startBroker(t, { redis: await startTestRedis(t) })
  const owner = await registerUser(url, 'owner')
  const peer = await connect(`${wsUrl}/v1/worker`, owner.key)
  t.teardown(() => peer.close())
  await peer.next('welcome')
  const refused = [
    'bob\u202Egnp', // right-to-left override
    'bo\u200Bb', // zero-width space
    'ali\u200Dce', // zero-width joiner
    '\uFF41dmin', // full-width a: a look-alike of "admin"
    ' padded', 'padded ',
    'Admin', 'ROOT', 'moderator', 'Anonymous', 'horde',
  ]
  for (const [i, name] of refused.entries()) {
    peer.send({ type: 'announce', id: `a${i}`, name, models: ['demo/tiny'], max_length: 512, max_context_length: 4096 })
    const answer = await peer.next((f) => f.id === `a${i}`)
    t.match(answer, { type: 'error', code: 'invalid_worker_name' }, `refused: ${JSON.stringify(name)}`)
  }
  peer.send({ type: 'announce', id: 'ok', name: 'Zoë’s box 2', models: ['demo/tiny'], max_length: 512, max_context_length: 4096 })
  t.match(await peer.next((f) => f.id === 'ok'), { type: 'ready' }, 'an ordinary name with accents and spaces inside is accepted')
})
