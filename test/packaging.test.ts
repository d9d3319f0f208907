import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { registerUser, startBroker, startTestRedis } from './helpers/harness.js'

const run = promisify(execFile)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

t.test('npm pack + npm install -g: horde and horde-worker run from an empty directory', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'horde-pack-'))
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }))
  // prepack builds dist/ with tsc; the tarball carries compiled JavaScript.
  const packed = await run('npm', ['pack', '--pack-destination', tmp, '--silent'], { cwd: ROOT, maxBuffer: 1 << 24 })
  const tgz = path.join(tmp, packed.stdout.trim().split('\n').pop()!)
  t.ok(fs.existsSync(tgz), `packed ${tgz}`)
  const prefix = path.join(tmp, 'prefix')
  // From the npm cache where it can (the registry for the rest); no install scripts (the bins need no native module).
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tgz], { cwd: tmp, maxBuffer: 1 << 24 })
  const empty = fs.mkdtempSync(path.join(tmp, 'empty-'))
  const bin = (name: string) => path.join(prefix, 'bin', name)
  const env = { ...process.env, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` }
  for (const name of ['horde', 'horde-worker', 'horde-admin']) {
    const help = await run(bin(name), ['--help'], { cwd: empty, env }).catch((error) => error)
    t.match(help.stderr, /^usage:/, `${name} --help runs from an empty directory`)
  }
  const redis = await startTestRedis(t)
  const { url } = await startBroker(t, { redis })
  const owner = await registerUser(url, 'owner')
  const worker = execFile(bin('horde-worker'), ['--url', url, '--key', owner.key, '--name', 'packed'], { cwd: empty, env })
  t.teardown(() => { worker.kill('SIGKILL') })
  let log = ''
  await new Promise<void>((resolve) => worker.stderr!.on('data', (piece) => { log += piece; if (/ready: worker packed/.test(log)) resolve() }))
  const answer = await run(bin('horde'), ['hello from the package', '--max-length', '5', '--url', url], { cwd: empty, env })
  t.equal(answer.stdout.length, 20, 'the installed horde printed the text of five demo words')
  // horde-admin over REST needs no database driver: the installed bin runs it with an admin's key.
  const adminCheck = await run(bin('horde-admin'), ['--url', url, '--key', owner.key, 'workers', 'list'], { cwd: empty, env }).catch((error) => error)
  t.match(adminCheck.stderr, /refused \(role_required\)/, 'the installed horde-admin reaches the admin API (and a plain user is refused)')
  const models = await run(bin('horde'), ['models', '--url', url], { cwd: empty, env })
  t.match(models.stdout, /^demo\/tiny\s+\S+\s+1\s+0\s+\d+ s$/m, 'horde models lists the served model with its worker and an ETA')
})
