/** Where the package's own folders (`migrations/`) are, from source (src/...) or compiled (dist/src/...). */
import fs from 'node:fs'
import path from 'node:path'

/** The first of `from/../../<name>` and `from/../../../<name>` that exists (source tree, or compiled into dist/). */
export function packageDir(from: string, name: string): string {
  const near = path.resolve(from, '../..', name)
  const far = path.resolve(from, '../../..', name)
  return fs.existsSync(near) || !fs.existsSync(far) ? near : far
}
