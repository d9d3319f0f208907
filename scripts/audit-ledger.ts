/**
 * `npm run audit-ledger [-- --db <file> | --database-url <url>] [-- --json]`: audits the ledger
 * of a broker's database (SQLite, or PostgreSQL with a URL or DATABASE_URL), read-only (safe
 * while brokers run), and prints a summary and every problem.
 * Exit codes: 0 the ledger is sound, 1 it has problems, 2 usage error or unreadable database.
 */
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../src/config.js'
import { DB_FILE } from '../src/db/open.js'
import { formatKudos } from '../src/economy/amounts.js'
import { auditLedger, NotALedgerError, type AuditReport } from '../src/ledger/audit.js'
import { isSqliteError, openAuditStore } from '../src/store/sqlite/audit.js'
import { openPgAuditStore } from '../src/store/postgres/audit.js'
import { describeUrl } from '../src/store/postgres/open.js'

const USAGE = `Usage: npm run audit-ledger -- [--db <file> | --database-url <url>] [--json]

Audits the kudos ledger: every balance against its postings, the mint invariant,
each entry, each generation settlement and each transfer. Opens the database read-only.

  --db <file>  the SQLite database (default: $DATA_DIR/${DB_FILE}, DATA_DIR defaults to ./data)
  --database-url <url>
               the PostgreSQL database (default: $DATABASE_URL; when set, the broker uses it too)
  --json       print the report as JSON (amounts in milli-kudos)
  -h, --help   show this help

Exit codes: 0 sound, 1 problems found, 2 usage error or unreadable database.`

function usageError(message: string): never {
  console.error(`audit-ledger: ${message}`)
  console.error(USAGE)
  process.exit(2)
}

function fail(message: string): never {
  console.error(`audit-ledger: ${message}`)
  process.exit(2)
}

function printSummary(file: string, report: AuditReport): void {
  const rows: Array<[string, string]> = [
    ['database', file],
    ['users', String(report.users)],
    ['entries', String(report.entries)],
    ['postings', String(report.postings)],
    ['minted', `${formatKudos(report.minted)} kudos`],
    ['sum of balances', `${formatKudos(report.sumBalances)} kudos`],
    ['problems', String(report.problems.length)],
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  console.log('Ledger audit')
  for (const [label, value] of rows) console.log(`  ${label.padEnd(width)}  ${value}`)
  if (report.ok) {
    console.log('OK: balances, entries, settlements and transfers agree with the postings.')
    return
  }
  console.log(`FAILED: ${report.problems.length} problem(s):`)
  for (const problem of report.problems) console.log(`  - ${problem}`)
}

async function main(): Promise<void> {
  let args: { db?: string; 'database-url'?: string; json?: boolean; help?: boolean }
  try {
    args = parseArgs({
      options: { db: { type: 'string' }, 'database-url': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
      strict: true,
    }).values
  } catch (error) {
    usageError((error as Error).message)
  }
  if (args.help) {
    console.log(USAGE)
    return
  }

  if (args.db !== undefined && args['database-url'] !== undefined) usageError('--db and --database-url name two databases: pass one')
  let databaseUrl = args['database-url']
  if (databaseUrl === '') usageError('--database-url needs a postgres:// URL')
  if (databaseUrl === undefined && args.db === undefined) {
    try {
      databaseUrl = loadConfig(process.env).databaseUrl
    } catch (error) {
      if (error instanceof ConfigError) fail(error.message)
      throw error
    }
  }
  if (databaseUrl !== undefined) return auditPostgres(databaseUrl, args.json === true)

  let file: string
  if (args.db !== undefined) {
    if (args.db === '') usageError('--db needs a file name')
    file = path.resolve(args.db)
  } else {
    try {
      file = path.join(loadConfig(process.env).dataDir, DB_FILE)
    } catch (error) {
      if (error instanceof ConfigError) fail(error.message)
      throw error
    }
  }
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) fail(`no database file at ${file} (pass --db <file> or set DATA_DIR)`)

  let report: AuditReport
  let opened: ReturnType<typeof openAuditStore> | undefined
  try {
    // Read-only, waiting briefly for a broker that writes at the same moment.
    opened = openAuditStore(file)
    report = await auditLedger(opened.audit)
  } catch (error) {
    if (error instanceof NotALedgerError || isSqliteError(error)) fail(`cannot audit ${file}: ${(error as Error).message}`)
    throw error
  } finally {
    opened?.close()
  }

  if (args.json) console.log(JSON.stringify({ database: file, ...report }, null, 2))
  else printSummary(file, report)
  process.exitCode = report.ok ? 0 : 1
}

/** The PostgreSQL path: same report, same exit codes; the URL's password is never printed. */
async function auditPostgres(url: string, json: boolean): Promise<void> {
  if (!/^postgres(ql)?:\/\//.test(url)) usageError(`--database-url expects a postgres:// URL, got ${JSON.stringify(url.split(':')[0])}`)
  const name = describeUrl(url)
  const opened = openPgAuditStore(url)
  let report: AuditReport
  try {
    report = await auditLedger(opened.audit)
  } catch (error) {
    await opened.close().catch(() => undefined)
    fail(`cannot audit ${name}: ${(error as Error).message}`)
  }
  await opened.close()
  if (json) console.log(JSON.stringify({ database: name, ...report }, null, 2))
  else printSummary(name, report)
  process.exitCode = report.ok ? 0 : 1
}

void main()
