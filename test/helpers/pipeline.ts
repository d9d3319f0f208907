/** Pipeline test helpers: a raw worker peer that announces itself, and a client that submits. */
import { connect, type Peer } from './ws.js'
import type { AnnounceSpec } from '../../src/protocol/worker.js'

/** An announcement with defaults filled in by the helper: the protocol's own shape. */
export type WorkerSpec = AnnounceSpec

/**
 * How long a test worker takes before `done` when the test asserts what it is paid: billed
 * tokens are bounded by the time the broker saw the job run (docs/security.md), and an answer
 * within a millisecond is billed nothing. 50 ms covers the few dozen tokens these tests send.
 */
export const PLAUSIBLE_MS = 50

export async function rawWorker(wsUrl: string, key: string, spec: WorkerSpec, options: { autoPong?: boolean } = {}): Promise<Peer> {
  const peer = await connect(`${wsUrl}/v1/worker`, key, {}, options)
  await peer.next('welcome')
  peer.send({ type: 'announce', id: 'announce', models: ['demo/tiny'], max_length: 512, max_context_length: 4096, ...spec })
  await peer.next('ready')
  return peer
}

/** Streams `pieces` for a job and says done. */
export function serve(peer: Peer, job: string, pieces: string[]): void {
  pieces.forEach((text, seq) => peer.send({ type: 'chunk', job, seq, text }))
  peer.send({ type: 'done', job, chunks: pieces.length })
}

export async function client(wsUrl: string, key?: string): Promise<Peer> {
  const peer = await connect(`${wsUrl}/v1/client`, key)
  await peer.next('welcome')
  return peer
}

let counter = 0
/** Submits over the client socket and returns the request id. */
export async function submit(peer: Peer, body: Record<string, unknown>): Promise<string> {
  const id = `s${++counter}`
  peer.send({ type: 'submit', id, prompt: 'hello', ...body })
  const accepted = await peer.next((f) => (f.type === 'accepted' || f.type === 'error') && f.id === id)
  if (accepted.type === 'error') throw new Error(`submit refused: ${accepted.code} ${accepted.message}`)
  return accepted.request
}
