import { execFile } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startTestRedis, tempDir } from './helpers/harness.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function runMain(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', ...env }, timeout: 60_000 }, (error, _stdout, stderr) => {
      resolve({ code: error ? (error as { code?: number }).code ?? null : 0, stderr })
    })
  })
}

t.test('a port in use and a missing models file: one clear line and a code, no stack trace', async (t) => {
  const redis = await startTestRedis(t)
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = String((blocker.address() as net.AddressInfo).port)
  const inUse = await runMain({ PORT: port, HOST: '127.0.0.1', REDIS_URL: redis.url, DATA_DIR: tempDir() })
  t.equal(inUse.code, 4)
  t.match(inUse.stderr, new RegExp(`^horde-broker: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use by another process \\(EADDRINUSE\\); set PORT/HOST\\n$`))
  const noModels = await runMain({ PORT: '0', HOST: '127.0.0.1', REDIS_URL: redis.url, DATA_DIR: tempDir(), MODELS_FILE: '/nonexistent/models.json' })
  t.equal(noModels.code, 2)
  t.match(noModels.stderr, /^horde-broker: Cannot read the model registry \/nonexistent\/models\.json \(MODELS_FILE\): ENOENT[^\n]*\n$/)
})
