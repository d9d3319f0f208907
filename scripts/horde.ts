#!/usr/bin/env node
/**
 * The horde client CLI.
 *
 *   horde "<prompt>" [--model m]... [--max-length n]   stream a generation to stdout
 *   horde status <request-id>                          a request's state and text
 *   horde models                                       models online: workers, waiting, ETA
 *   horde transfer <to> <amount> [--memo text]         send kudos
 *   horde balance                                      your kudos
 *
 * Connection: --url or HORDE_URL (default http://127.0.0.1:7001), --key or HORDE_API_KEY
 * (anonymous without one). A prompt that is itself a subcommand name goes through
 * `horde generate "<prompt>"`.
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { EXIT, UsageError, type Command, type Env } from './cli/command.js'
import { GENERATE_USAGE, runGenerate } from './cli/generate.js'
import { runStatus, STATUS_USAGE } from './cli/status.js'

interface Subcommand {
  usage: string
  /** Loaded on use, so a subcommand's dependencies cost nothing to the others. */
  load(): Promise<Command>
}

/** Subcommands by name. A new one is one entry here; anything else is a prompt. */
export const SUBCOMMANDS: Record<string, Subcommand> = {
  generate: { usage: GENERATE_USAGE.replace('horde ', 'horde generate '), load: async () => runGenerate },
  status: { usage: STATUS_USAGE, load: async () => runStatus },
  models: { usage: 'horde models [--json] [--all] [--url URL]', load: async () => (await import('./cli/models.js')).runModels },
  transfer: { usage: 'horde transfer <to> <amount> [--memo text] [--url URL] [--key KEY]', load: async () => (await import('./cli/kudos.js')).runTransfer },
  balance: { usage: 'horde balance [--url URL] [--key KEY]', load: async () => (await import('./cli/kudos.js')).runBalance },
}

export function usage(): string {
  return ['usage:', `  ${GENERATE_USAGE}`, ...Object.entries(SUBCOMMANDS).filter(([name]) => name !== 'generate').map(([, sub]) => `  ${sub.usage}`),
    '', 'Connection: --url or HORDE_URL (default http://127.0.0.1:7001), --key or HORDE_API_KEY (anonymous without one).'].join('\n')
}

export async function main(argv: string[], env: Env): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    process.stderr.write(`${usage()}\n`)
    return first === undefined ? EXIT.usage : EXIT.ok
  }
  const sub = Object.hasOwn(SUBCOMMANDS, first) ? SUBCOMMANDS[first] : undefined
  try {
    const command = sub ? await sub.load() : runGenerate
    return await command(sub ? rest : argv, env)
  } catch (error) {
    // parseArgs reports unknown or malformed flags with ERR_PARSE_ARGS_* codes.
    if (error instanceof UsageError || String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`horde: ${(error as Error).message}\n${sub ? `usage: ${sub.usage}` : usage()}\n`)
      return EXIT.usage
    }
    process.stderr.write(`horde: ${(error as Error).message}\n`)
    return EXIT.failed
  }
}

// Run when executed (also through an npm bin symlink), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2), process.env).then((code) => { process.exitCode = code }, (error) => {
    process.stderr.write(`horde: ${(error as Error).stack ?? error}\n`)
    process.exitCode = EXIT.failed
  })
}
