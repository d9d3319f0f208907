/**
 * TCP connections per client address, HTTP and WebSocket alike, counted as they are
 * accepted: past the cap the connection is answered `429 too_many_connections` at once and
 * closed, without waiting for a request on it, so one address cannot hold the server's
 * sockets with idle or trickling connections. A trusted proxy (TRUST_PROXY) carries many
 * clients' connections and is not capped; its clients' own limits apply per request.
 */
import { BlockList, isIPv6, type Server, type Socket } from 'node:net'
import { ERRORS } from '../errors.js'

function proxyList(proxies: readonly string[]): BlockList {
  const list = new BlockList()
  for (const entry of proxies) {
    const [address, bits] = entry.split('/')
    const type = isIPv6(address!) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address!, type)
    else list.addSubnet(address!, Number(bits), type)
  }
  return list
}

function refusal(): string {
  const body = JSON.stringify({ error: { code: 'too_many_connections', message: ERRORS.too_many_connections.message } })
  return `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

export function capConnections(server: Server, perAddress: number, trustedProxies: readonly string[]): void {
  const open = new Map<string, number>()
  const proxies = proxyList(trustedProxies)
  const answer = refusal()
  const isProxy = (address: string) => proxies.check(address, isIPv6(address) ? 'ipv6' : 'ipv4')
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? ''
    if (address === '' || isProxy(address)) return
    const count = (open.get(address) ?? 0) + 1
    if (count > perAddress) {
      // The answer is the error table's; the socket is gone once it is sent (or after 1 s).
      socket.end(answer, () => socket.destroy())
      setTimeout(() => socket.destroy(), 1000).unref()
      return
    }
    open.set(address, count)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address)
      else open.set(address, left)
    })
  })
}
