/**
 * The two schemas agree: a SQLite file migrated with migrations/ and a PostgreSQL database
 * migrated with migrations/pg/ have the same tables, the same columns with the same
 * nullability and type family, and the same indexes (columns, in order, and uniqueness).
 * Read from the migrated databases, so a schema change without its migration fails here too.
 */
import path from 'node:path'
import t from 'tap'
import { openDb } from '../src/db/open.js'
import { openPostgresStore } from '../src/store/postgres/index.js'
import { tempDir } from './helpers/harness.js'
import { createTestDatabase } from './helpers/postgres.js'

interface Shape {
  /** table -> column -> `family null|not null` */
  columns: Record<string, Record<string, string>>
  /** `table(col, col) unique?` for every index, the primary key included */
  indexes: string[]
}

/** Type families: what a value of the column is, whatever the dialect calls it. */
function family(type: string): string {
  const t = type.toLowerCase()
  if (/^(integer|int|bigint|int4|int8|smallint|serial|bigserial)$/.test(t)) return 'integer'
  if (/^(text|varchar|character varying)/.test(t)) return 'text'
  return t
}

function sqliteShape(file: string): Shape {
  const { sqlite, close } = openDb(file)
  try {
    const tables = (sqlite.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%'`).all() as Array<{ name: string }>).map((r) => r.name)
    const shape: Shape = { columns: {}, indexes: [] }
    for (const table of tables) {
      const columns = sqlite.prepare(`pragma table_info(${table})`).all() as Array<{ name: string; type: string; notnull: number; pk: number }>
      shape.columns[table] = Object.fromEntries(columns.map((c) => [c.name, `${family(c.type)} ${c.notnull || c.pk ? 'not null' : 'null'}`]))
      const pk = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
      shape.indexes.push(`${table}(${pk.join(', ')}) unique`)
      for (const index of sqlite.prepare(`pragma index_list(${table})`).all() as Array<{ name: string; unique: number; origin: string }>) {
        if (index.origin === 'pk') continue
        const cols = (sqlite.prepare(`pragma index_info(${index.name})`).all() as Array<{ name: string; seqno: number }>).sort((a, b) => a.seqno - b.seqno).map((c) => c.name)
        shape.indexes.push(`${table}(${cols.join(', ')})${index.unique ? ' unique' : ''}`)
      }
    }
    shape.indexes.sort()
    return shape
  } finally {
    close()
  }
}

async function postgresShape(url: string): Promise<Shape> {
  const store = await openPostgresStore(url)
  try {
    const shape: Shape = { columns: {}, indexes: [] }
    const columns = (await store.pool.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(`
      select table_name, column_name, data_type, is_nullable from information_schema.columns
      where table_schema = 'public' order by table_name, ordinal_position`)).rows
    for (const c of columns) (shape.columns[c.table_name] ??= {})[c.column_name] = `${family(c.data_type)} ${c.is_nullable === 'YES' ? 'null' : 'not null'}`
    const indexes = (await store.pool.query<{ table_name: string; unique: boolean; cols: string[] }>(`
      select t.relname as table_name, i.indisunique as unique,
        array(select a.attname from unnest(i.indkey) with ordinality k(attnum, n) join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum order by k.n)::text[] as cols
      from pg_index i join pg_class t on t.oid = i.indrelid join pg_namespace ns on ns.oid = t.relnamespace
      where ns.nspname = 'public'`)).rows
    shape.indexes = indexes.map((i) => `${i.table_name}(${i.cols.join(', ')})${i.unique ? ' unique' : ''}`).sort()
    return shape
  } finally {
    await store.close()
  }
}

t.test('the SQLite and PostgreSQL migrations build the same schema', async (t) => {
  const lite = sqliteShape(path.join(tempDir(), 'db.sqlite'))
  const pg = await postgresShape(await createTestDatabase(t, 'parity'))
  t.same(Object.keys(pg.columns).sort(), Object.keys(lite.columns).sort(), 'the same tables')
  t.ok(Object.keys(lite.columns).length >= 9, 'every table of the broker is compared')
  for (const table of Object.keys(lite.columns)) t.same(pg.columns[table], lite.columns[table], `${table}: the same columns, nullability and type families`)
  t.same(pg.indexes, lite.indexes, 'the same indexes and uniques')
})

t.test('the family check tells types apart', async (t) => {
  t.equal(family('bigint'), family('INTEGER'))
  t.not(family('text'), family('integer'))
  t.not(family('real'), family('integer'))
})
