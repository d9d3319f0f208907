/**
 * `horde-admin` on the database: which one (`--db`, `--database-url`, else the broker's own
 * settings: DATABASE_URL, or DATA_DIR's horde.sqlite), opened with the broker's store, and
 * the two things only the database can do: an API key for a user, and a consistent online
 * backup (SQLite's backup API; `pg_dump` for PostgreSQL).
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { Store } from '../../src/store/ports.js'
import type { Env } from '../cli/command.js'
import { UsageError } from '../cli/command.js'

export interface DatabaseChoice {
  kind: 'sqlite' | 'postgres'
  /** The SQLite file, or the PostgreSQL URL. */
  target: string
  /** For messages: the file, or the URL without its password. */
  where: string
}

/** The database the flags or the broker's settings name; a SQLite file must exist (no typo makes a new one). */
export async function chooseDatabase(values: { db?: string; 'database-url'?: string }, env: Env): Promise<DatabaseChoice> {
  const { loadConfig } = await import('../../src/config.js')
  const { DB_FILE } = await import('../../src/db/open.js')
  const { describeUrl } = await import('../../src/store/postgres/open.js')
  if (values.db !== undefined && values['database-url'] !== undefined) throw new UsageError('--db and --database-url name two databases: pass one')
  const url = values['database-url'] ?? (values.db === undefined ? loadConfig(env).databaseUrl : undefined)
  if (url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError('--database-url expects a postgres:// URL')
    return { kind: 'postgres', target: url, where: describeUrl(url) }
  }
  const file = values.db !== undefined ? path.resolve(values.db) : path.join(loadConfig(env).dataDir, DB_FILE)
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new UsageError(`no database file at ${file} (pass --db <file> or set DATA_DIR)`)
  return { kind: 'sqlite', target: file, where: file }
}

/** The broker's store on the chosen database (migrated as the broker would; WAL and busy waits make sharing the file safe). */
export async function openChosen(choice: DatabaseChoice): Promise<Store> {
  if (choice.kind === 'postgres') {
    const { openPostgresStore } = await import('../../src/store/postgres/index.js')
    return openPostgresStore(choice.target, { max: 2 })
  }
  const { openDb } = await import('../../src/db/open.js')
  const { createSqliteStore } = await import('../../src/store/sqlite/index.js')
  return createSqliteStore(openDb(choice.target))
}

/**
 * A consistent copy of the live database at `dest`. SQLite: the online backup API, page by
 * page from one snapshot while the broker keeps writing, then the copy is audited.
 * PostgreSQL: `pg_dump --format=custom`, when it is installed.
 */
export async function backup(choice: DatabaseChoice, dest: string, print: (line: string) => void): Promise<void> {
  const out = path.resolve(dest)
  if (fs.existsSync(out)) throw new UsageError(`${out} exists: name a new file`)
  if (choice.kind === 'postgres') {
    const found = spawnSync('pg_dump', ['--version'], { encoding: 'utf8' })
    if (found.error || found.status !== 0) {
      throw new UsageError('pg_dump is not installed here (apt-get install -y postgresql-client); a PostgreSQL backup is made with it')
    }
    const run = spawnSync('pg_dump', ['--format=custom', '--no-owner', `--file=${out}`, choice.target], { encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`pg_dump failed: ${run.stderr.trim()}`)
    print(`backup: ${choice.where} -> ${out} (${found.stdout.trim()}, custom format; restore with pg_restore --clean --no-owner -d <url> ${path.basename(out)})`)
    return
  }
  const { default: Database } = await import('better-sqlite3')
  const { openAuditStore } = await import('../../src/store/sqlite/audit.js')
  const source = new Database(choice.target, { fileMustExist: true })
  source.pragma('busy_timeout = 5000')
  try {
    await source.backup(out)
  } finally {
    source.close()
  }
  const copy = openAuditStore(out)
  try {
    const report = await copy.audit.run()
    print(`backup: ${choice.where} -> ${out} (${fs.statSync(out).size} bytes, ${report.users} users, ${report.entries} ledger entries; ledger audit of the copy: ${report.ok ? 'OK' : `${report.problems.length} problem(s)`})`)
  } finally {
    copy.close()
  }
}

/** A new API key for a user, made on the database (the operator's way to give ADMIN_USERS their first key). */
export async function issueKey(store: Store, user: string, name: string, scopes: string[]): Promise<{ username: string; key: string; scopes: string[] }> {
  const { createAccounts } = await import('../../src/accounts/accounts.js')
  const { createAdmin } = await import('../../src/admin/admin.js')
  const found = await createAdmin(store, { maxKudos: 1 }).user(user)
  const issued = await createAccounts(store).issueKey(found.id, name, scopes)
  return { username: found.username, key: issued.key, scopes: issued.scopes }
}
