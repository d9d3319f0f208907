#!/usr/bin/env node
/**
 * horde-admin: the operator's tool. Works on the database directly (safe while the broker
 * runs: the broker reads the audit trail and applies suspensions, pauses and trust within
 * MODERATION_POLL_SECONDS) or through the admin REST API with `--url` and an admin's key.
 * Every change needs `--reason` (an award: `--memo`) and is kept in the audit trail.
 * Exit codes: 0 done, 1 refused (the code is printed) or the audit found problems, 2 usage
 * error or unreadable database.
 */
import { realpathSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { EXIT, UsageError, type Env } from './cli/command.js'
import { Refused, restBackend, type AdminBackend } from './admin/backend.js'
import { printAction, printUser, printWorkers, printActions, printModels, printAudit } from './admin/print.js'

export const USAGE = `usage: horde-admin [connection] <command> [arguments]

  users show <user>                          roles, suspension, balance, workers, recent actions
  users roles <user> --grant|--revoke moderator --reason TEXT
  users suspend|unsuspend <user> --reason TEXT
  users logout <user> --reason TEXT          end every browser session of the user (keys untouched)
  users award <user> <kudos> --memo TEXT     mint kudos (an award entry of the ledger)
  users key <user> [--name NAME] [--scopes all|read,...]   a new API key (database only; shown once)
  workers list [--owner USER]
  workers trust|untrust <worker> --reason TEXT
  workers pause|unpause <worker> --reason TEXT
  models show [--file FILE]                  the model registry (MODELS_FILE, or the broker's with --url)
  models check <file>                        check a new registry file before the broker uses it
  actions [--user USER] [--worker NAME] [--limit N]   the audit trail, newest first
  backup <file>                              a consistent online copy of the database (database only)
  audit                                      the ledger audit (as npm run audit-ledger)

Connection: the database by default (--db FILE, --database-url URL, else DATABASE_URL or
DATA_DIR/horde.sqlite, as the broker reads them), acting as the operator (cli:<os user>) or
--as USER; or the REST API: --url URL (HORDE_ADMIN_URL) with --key KEY (HORDE_ADMIN_KEY).
--json prints the answers as JSON.`

const OPTIONS = {
  db: { type: 'string' }, 'database-url': { type: 'string' }, url: { type: 'string' }, key: { type: 'string' }, as: { type: 'string' },
  json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  reason: { type: 'string' }, memo: { type: 'string' }, grant: { type: 'string' }, revoke: { type: 'string' },
  owner: { type: 'string' }, user: { type: 'string' }, worker: { type: 'string' }, limit: { type: 'string' },
  name: { type: 'string' }, scopes: { type: 'string' }, file: { type: 'string' },
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']

function need(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`${what} is required`)
  return value
}

export async function run(argv: string[], env: Env, out: (line: string) => void = console.log): Promise<number> {
  let parsed: { values: Values; positionals: string[] }
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    console.error(`horde-admin: ${(error as Error).message}`)
    console.error(USAGE)
    return EXIT.usage
  }
  const { values, positionals } = parsed
  if (values.help || positionals.length === 0) {
    console.error(USAGE)
    return values.help ? EXIT.ok : EXIT.usage
  }
  const [group, verb, ...rest] = positionals
  const show = (value: unknown, human: () => void) => (values.json ? out(JSON.stringify(value, null, 2)) : human())
  let backend: AdminBackend | undefined
  try {
    // Commands that need no broker and no database.
    if (group === 'models' && verb === 'check') {
      const { checkRegistry } = await import('./admin/models.js')
      const report = await checkRegistry(need(rest[0], 'the registry file'), values.file ?? env.MODELS_FILE)
      show(report, () => report.lines.forEach((line) => out(line)))
      return report.ok ? EXIT.ok : EXIT.failed
    }
    const url = values.url ?? env.HORDE_ADMIN_URL
    const databaseOnly = (group === 'users' && verb === 'key') || group === 'backup'
    if (url !== undefined && databaseOnly) throw new UsageError(`${group === 'backup' ? 'backup' : 'users key'} works on the database only: run it on the broker's machine without --url`)
    if (url !== undefined) {
      backend = restBackend(url, need(values.key ?? env.HORDE_ADMIN_KEY, '--key (or HORDE_ADMIN_KEY) with --url'))
    } else {
      const { chooseDatabase, openChosen, backup, issueKey } = await import('./admin/database.js')
      const choice = await chooseDatabase(values, env)
      if (group === 'backup') {
        await backup(choice, need(verb, 'the backup file'), out)
        return EXIT.ok
      }
      const store = await openChosen(choice)
      if (group === 'users' && verb === 'key') {
        try {
          const scopes = (values.scopes ?? 'all').split(',').map((s) => s.trim())
          const issued = await issueKey(store, need(rest[0], 'the user'), values.name ?? 'horde-admin', scopes)
          show(issued, () => out(`${issued.key}\n(an API key for ${issued.username}, scopes ${issued.scopes.join(',')}: shown only once)`))
          return EXIT.ok
        } finally {
          await store.close()
        }
      }
      const { dbBackend } = await import('./admin/backend.js')
      const { loadConfig } = await import('../src/config.js')
      const config = loadConfig(env)
      try {
        backend = await dbBackend(store, choice.where, { as: values.as, modelsFile: values.file ?? config.modelsFile, maxKudos: config.kudos.maxTransfer })
      } catch (error) {
        await store.close()
        throw error
      }
    }
    return await dispatch(backend, group, verb, rest, values, show, out)
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`horde-admin: ${error.message}`)
      return EXIT.usage
    }
    if (error instanceof Refused) {
      console.error(`horde-admin: refused (${error.code}): ${error.message}`)
      return error.code === 'unreachable' ? EXIT.usage : EXIT.failed
    }
    if ((error as Error).name === 'ConfigError' || (error as Error).name === 'SqliteError') {
      console.error(`horde-admin: ${(error as Error).message}`)
      return EXIT.usage
    }
    throw error
  } finally {
    await backend?.close()
  }
}

async function dispatch(backend: AdminBackend, group: string, verb: string | undefined, rest: string[], values: Values,
  show: (value: unknown, human: () => void) => void, out: (line: string) => void): Promise<number> {
  const reason = () => need(values.reason, '--reason')
  const target = (what: string) => need(rest[0], what)
  switch (`${group} ${verb ?? ''}`.trim()) {
    case 'users show': {
      const user = await backend.showUser(target('the user'))
      show(user, () => printUser(user, out))
      return EXIT.ok
    }
    case 'users roles': {
      const user = target('the user')
      if ((values.grant === undefined) === (values.revoke === undefined)) {
        const shown = await backend.showUser(user)
        show({ roles: shown.roles }, () => out(`${shown.username}: ${shown.roles.length ? shown.roles.join(', ') : '(no roles)'}`))
        return EXIT.ok
      }
      const grant = values.grant !== undefined
      const result = await backend.setRole(user, (values.grant ?? values.revoke)!, grant, reason())
      show(result, () => printAction(result, `${result.user.username}: roles ${result.user.roles.join(', ') || '(none)'}`, out))
      return EXIT.ok
    }
    case 'users suspend': case 'users unsuspend': {
      const result = await backend.setSuspended(target('the user'), verb === 'suspend', reason())
      show(result, () => printAction(result, `${result.user.username}: ${result.user.suspended ? 'suspended' : 'not suspended'}`, out))
      return EXIT.ok
    }
    case 'users logout': {
      const result = await backend.endSessions(target('the user'), reason())
      show(result, () => out(`${result.user.username}: ${result.ended} session(s) ended (action ${result.action.id})`))
      return EXIT.ok
    }
    case 'users award': {
      const amount = need(rest[1], 'the amount of kudos')
      const result = await backend.award(target('the user'), amount, need(values.memo, '--memo'))
      show(result, () => out(`awarded ${result.amount} kudos to ${result.to.username} (ledger entry ${result.entry_id}; action ${result.action.id})`))
      return EXIT.ok
    }
    case 'workers list': {
      const { workers } = await backend.workers(values.owner)
      show({ workers }, () => printWorkers(workers, out))
      return EXIT.ok
    }
    case 'workers trust': case 'workers untrust': {
      const result = await backend.setTrusted(target('the worker'), verb === 'trust', reason())
      show(result, () => printAction(result, `${result.worker.name}: ${result.worker.trusted ? 'trusted' : 'not trusted'}`, out))
      return EXIT.ok
    }
    case 'workers pause': case 'workers unpause': {
      const result = await backend.setPaused(target('the worker'), verb === 'pause', reason())
      show(result, () => printAction(result, `${result.worker.name}: ${result.worker.paused ? 'paused' : 'not paused'}`, out))
      return EXIT.ok
    }
    case 'models show': {
      const models = await backend.models()
      show(models, () => printModels(models.models, out))
      return EXIT.ok
    }
    case 'actions': {
      const limit = values.limit === undefined ? undefined : Number(values.limit)
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1 && limit <= 500)) throw new UsageError('--limit must be 1-500')
      const { actions } = await backend.actions({ user: values.user, worker: values.worker, limit })
      show({ actions }, () => printActions(actions, out))
      return EXIT.ok
    }
    case 'audit': {
      const report = await backend.audit()
      show(report, () => printAudit(backend.where, report, out))
      return report.ok ? EXIT.ok : EXIT.failed
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify([group, verb].filter(Boolean).join(' '))}`)
  }
}

// Run when executed (tsx, node, or an npm bin symlink), not when imported by tests.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  run(process.argv.slice(2), process.env).then((code) => { process.exitCode = code }, (error) => {
    console.error(`horde-admin: ${(error as Error).stack ?? error}`)
    process.exitCode = EXIT.failed
  })
}
