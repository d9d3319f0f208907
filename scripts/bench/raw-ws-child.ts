/**
 * The raw WebSocket baseline, in a process of its own, with the broker's ws settings (no
 * compression, same frame limit). Two paths:
 * - `/relay?pair=K&role=up|down`: every frame from the `up` socket of pair K is sent as is
 *   to its `down` socket: the broker's chunk path (worker -> server -> client) minus the broker.
 * - `/idle`: connections are only held and pinged every RAW_HEARTBEAT_SECONDS, silent ones dropped.
 */
import http from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'

const heartbeatMs = Number(process.env.RAW_HEARTBEAT_SECONDS ?? 15) * 1000
const server = http.createServer((_req, res) => res.writeHead(404).end())
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 256 * 1024 })
const downs = new Map<string, WebSocket>()
const idle = new Map<WebSocket, number>()

wss.on('connection', (socket, request) => {
  const url = new URL(request.url ?? '/', 'http://x')
  if (url.pathname === '/relay') {
    const pair = url.searchParams.get('pair') ?? ''
    if (url.searchParams.get('role') === 'down') {
      downs.set(pair, socket)
      socket.on('close', () => downs.delete(pair))
    } else {
      socket.on('message', (data, isBinary) => downs.get(pair)?.send(data, { binary: isBinary }))
    }
  } else {
    idle.set(socket, performance.now())
    socket.on('pong', () => idle.set(socket, performance.now()))
    socket.on('close', () => idle.delete(socket))
  }
  socket.on('error', () => {})
})

const heartbeat = setInterval(() => {
  const now = performance.now()
  for (const [socket, last] of idle) {
    if (now - last > heartbeatMs * 1.5) socket.terminate()
    else socket.ping()
  }
}, heartbeatMs)

server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  process.send!({ type: 'ready', url: `http://127.0.0.1:${port}` })
})

function stop(): void {
  clearInterval(heartbeat)
  for (const socket of wss.clients) socket.terminate()
  process.exit(0)
}

process.on('message', (call: { cmd: string; id: number }) => {
  if (call.cmd === 'gc') {
    globalThis.gc?.()
    process.send!({ type: 'reply', id: call.id })
  } else if (call.cmd === 'stop') stop()
  else process.send!({ type: 'reply', id: call.id, error: `unknown command ${call.cmd}` })
})
process.on('disconnect', stop)
