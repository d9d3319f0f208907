import t from 'tap'
import { readSse, type SseEvent } from '../src/clients/backends/sse.js'

/** Feeds `text` to the reader cut into the given byte slices (or byte by byte). */
async function read(text: string, size = 1): Promise<SseEvent[]> {
  const bytes = Buffer.from(text, 'utf8')
  async function* pieces() { for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size) }
  const out: SseEvent[] = []
  for await (const event of readSse(pieces())) out.push(event)
  return out
}

const cases: Array<[string, string, SseEvent[]]> = [
  ['LF line ends', 'event: message\ndata: {"token":"a"}\n\ndata: b\n\n', [{ event: 'message', data: '{"token":"a"}' }, { event: 'message', data: 'b' }]],
  ['CRLF line ends', 'event: x\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n', [{ event: 'x', data: '1' }, { event: 'message', data: '2' }]],
  ['CR line ends', 'data: 1\r\rdata: 2\r\r', [{ event: 'message', data: '1' }, { event: 'message', data: '2' }]],
  ['comments and unknown fields are skipped', ': ping\nretry: 10\nfoo: bar\ndata: x\n\n', [{ event: 'message', data: 'x' }]],
  ['data lines join with LF', 'data: a\ndata:b\ndata\n\n', [{ event: 'message', data: 'a\nb\n' }]],
  ['a blank line without data dispatches nothing', 'event: lonely\n\ndata: x\n\n', [{ event: 'message', data: 'x' }]],
  ['a BOM is dropped', '\ufeffdata: x\n\n', [{ event: 'message', data: 'x' }]],
  ['multi-byte text survives any cut', 'data: wörld — ✓ 🐉\n\n', [{ event: 'message', data: 'wörld — ✓ 🐉' }]],
  ['an id is kept', 'id: 7\ndata: x\n\n', [{ event: 'message', data: 'x', id: '7' }]],
  ['a last event without a blank line is still read', 'data: a\n\ndata: tail', [{ event: 'message', data: 'a' }, { event: 'message', data: 'tail' }]],
]

for (const [name, text, expected] of cases) {
  t.test(name, async (t) => {
    for (const size of [1, 2, 3, 7, 1000]) t.same(await read(text, size), expected, `in ${size}-byte pieces`)
  })
}
