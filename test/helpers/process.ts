/**
 * Runs the repository's scripts as real processes (`node --import tsx scripts/...`), the way
 * a user runs them, recording their output; whatever is still running at teardown is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { defer, type TestLike } from './harness.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface Running {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves with the exit code, or the signal that ended the process. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Waits until stderr (or stdout) matches. */
  waitFor(pattern: RegExp, stream?: 'stderr' | 'stdout', timeoutMs?: number): Promise<RegExpMatchArray>
}

export function runScript(t: TestLike, script: string, args: string[], env: Record<string, string | undefined> = {}): Running {
  // No HORDE_* from the developer's shell leaks into a test.
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HORDE_')))
  const child = spawn(process.execPath, ['--import', 'tsx', path.join('scripts', script), ...args], {
    cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const wakers = new Set<() => void>()
  child.stdout!.setEncoding('utf8').on('data', (piece: string) => { out += piece; for (const wake of wakers) wake() })
  child.stderr!.setEncoding('utf8').on('data', (piece: string) => { err += piece; for (const wake of wakers) wake() })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => { resolve({ code, signal }); for (const wake of wakers) wake() })
  })
  let ended = false
  void exited.then(() => { ended = true })
  defer(t, async () => {
    if (ended) return
    child.kill('SIGKILL')
    await exited
  })
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, stream = 'stderr', timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = (stream === 'stderr' ? err : out).match(pattern)
          if (found) { done(); resolve(found); return }
          if (ended) { done(); reject(new Error(`${script} exited before ${stream} matched ${pattern}; stderr:\n${err}`)) }
        }
        const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${pattern} in ${script}'s ${stream}; stderr:\n${err}`)) }, timeoutMs)
        const done = () => { clearTimeout(timer); wakers.delete(check) }
        wakers.add(check)
        check()
      })
    },
  }
}
