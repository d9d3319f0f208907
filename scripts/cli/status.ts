/** `horde status <request-id>`: the broker's view of a request (`GET /v1/generate/:id`), and its text once there is some. */
import { parseArgs } from 'node:util'
import { requestStatus } from '../../src/clients/client.js'
import { connection, connectionOptions, EXIT, UsageError, type Env } from './command.js'

export const STATUS_USAGE = 'horde status <request-id> [--capability CAP] [--json] [--url URL] [--key KEY]'

export async function runStatus(argv: string[], env: Env): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...connectionOptions, json: { type: 'boolean' }, capability: { type: 'string' } } })
  if (positionals.length !== 1) throw new UsageError('give one request id')
  const { url, key } = connection(values, env)
  let status
  try {
    status = await requestStatus(url, positionals[0], key, values.capability)
  } catch (error) {
    process.stderr.write(`error: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}\n`)
    return EXIT.failed
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(status, null, 2)}\n`)
    return EXIT.ok
  }
  // Fields on stderr, text alone on stdout: `horde status ID > answer.txt` keeps just the text.
  const fields: Array<[string, unknown]> = [
    ['state', status.state], ['position', status.position], ['attempt', status.attempt], ['worker', status.worker],
    ['model', status.model], ['tokens', status.tokens], ['kudos', status.kudos], ['error', status.error],
    ['created', status.created_at], ['finished', status.finished_at],
  ]
  for (const [name, value] of fields) if (value !== undefined && value !== null) process.stderr.write(`${name}: ${value}\n`)
  if (status.text) process.stdout.write(status.text.endsWith('\n') || !process.stdout.isTTY ? status.text : `${status.text}\n`)
  return EXIT.ok
}
