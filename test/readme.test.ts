import fs from 'node:fs'
import t from 'tap'

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const config = fs.readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8')
const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

t.test('the README documents every environment variable the config reads', async (t) => {
  const variables = new Set([...config.matchAll(/\(env, '([A-Z_]+)'/g), ...config.matchAll(/env\.([A-Z_]+)/g)].map((m) => m[1]))
  t.ok(variables.size > 20)
  for (const variable of variables) t.match(readme, new RegExp(`\\| \`${variable}\` \\|`), variable)
})

t.test('the README\'s quick start commands and scripts exist', async (t) => {
  t.match(readme, /npm ci && npm start/)
  t.match(readme, /npm ci && npm test/)
  for (const [, script] of readme.matchAll(/`npm run ([a-z:-]+)`/g)) t.ok(pkg.scripts[script], `npm run ${script}`)
  for (const [, bin] of readme.matchAll(/npx (horde(?:-worker)?) /g)) t.ok(pkg.bin[bin], `bin ${bin}`)
})
