import fs from 'node:fs'
import t from 'tap'
import { workerSchemas } from '../src/protocol/worker.js'
import { clientSchemas } from '../src/protocol/client.js'
import { BotCommandSchemas } from '../src/protocol/bot.js'
import { CloseCode } from '../src/protocol/envelope.js'
import { ERRORS } from '../src/errors.js'

const doc = fs.readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8')

t.test('docs/protocol.md names every message and field the schemas accept', async (t) => {
  const channels: Record<string, Record<string, { properties: Record<string, unknown> }>> = { worker: workerSchemas as any, client: clientSchemas as any, bot: BotCommandSchemas as any }
  for (const [channel, schemas] of Object.entries(channels)) {
    for (const [type, schema] of Object.entries(schemas)) {
      t.ok(doc.includes(`\`${type}\``), `${channel}: message ${type}`)
      for (const field of Object.keys(schema.properties)) {
        if (field === 'type') continue
        t.ok(doc.includes(`\`${field}\``) || doc.includes(`\`${field}?\``) || doc.includes(`"${field}"`), `${channel}.${type}: field ${field}`)
      }
    }
  }
})

t.test('docs/protocol.md lists every close code, and the socket error codes are in the error table', async (t) => {
  for (const [name, code] of Object.entries(CloseCode)) {
    t.match(doc, new RegExp(`\\| ${code} \\| ${name} \\|`), `close code ${code} ${name}`)
  }
  const errorSection = doc.slice(doc.indexOf('### Errors'), doc.indexOf('### Close codes'))
  const documented = [...errorSection.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1])
  t.ok(documented.length >= 10, 'the error table is there')
  for (const code of documented) {
    if (code in ERRORS) t.pass(`${code} is a real code`)
    else t.fail(`docs list ${code}, which is not in src/errors.ts`)
  }
})
