/**
 * The broker under test, in a process of its own: `createBroker` from the environment the
 * bench hands it, listening on 127.0.0.1:0. Calls over IPC: `grant` (kudos for set-up),
 * `gc`, `stop`.
 */
import { createBroker } from '../../src/broker.js'
import { loadConfig } from '../../src/config.js'
import { toMilli } from '../../src/economy/amounts.js'

interface Call {
  cmd: string
  id: number
  userId?: number
  kudos?: number
}

const broker = await createBroker(loadConfig(process.env))
const url = await broker.listen()
process.send!({ type: 'ready', url })

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  await broker.close().catch(() => {})
  // Let --cpu-prof write its file through a normal exit.
  process.exit(0)
}

process.on('message', (call: Call) => {
  const reply = (result?: unknown, error?: string) => process.send!({ type: 'reply', id: call.id, result, error })
  try {
    switch (call.cmd) {
      case 'grant':
        broker.services.ledger.post({ kind: 'award', memo: 'bench set-up', postings: [{ userId: call.userId!, amount: toMilli(call.kudos!), category: 'awarded' }] })
        return reply()
      case 'gc':
        globalThis.gc?.()
        return reply()
      case 'stop':
        void stop()
        return
      default:
        return reply(undefined, `unknown command ${call.cmd}`)
    }
  } catch (error) {
    reply(undefined, String(error))
  }
})
// The bench went away: do not outlive it.
process.on('disconnect', () => void stop())
