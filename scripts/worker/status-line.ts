/**
 * What the worker prints. On a terminal: log lines scroll above one status line that is
 * redrawn every second (jobs, failures, tokens/s, kudos since start, uptime). Elsewhere
 * (a file, journald): plain timestamped log lines, and the totals every `summaryMs`.
 */

export interface Totals {
  jobs: number
  failures: number
  tokens: number
  kudos: number
  /** Milliseconds spent running jobs (for tokens per second while working). */
  busyMs: number
  /** What the worker is doing now: `working`, `idle`, `backend down`, `paused`, `stopping`. */
  state: string
}

export interface Reporter {
  log(line: string): void
  totals: Totals
  stop(): void
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`
}

/** The status line's text. */
export function statusText(totals: Totals, uptimeMs: number): string {
  const rate = totals.busyMs > 0 ? (totals.tokens / (totals.busyMs / 1000)).toFixed(1) : '0.0'
  return `[${totals.state}] jobs ${totals.jobs} · failures ${totals.failures} · ${rate} tokens/s · ${Number(totals.kudos.toFixed(3))} kudos · up ${duration(uptimeMs)}`
}

export function createReporter(stream: NodeJS.WriteStream, options: { prefix: string; summaryMs?: number }): Reporter {
  const started = Date.now()
  const totals: Totals = { jobs: 0, failures: 0, tokens: 0, kudos: 0, busyMs: 0, state: 'starting' }
  const tty = stream.isTTY === true
  const draw = () => stream.write(`\r\x1b[2K${statusText(totals, Date.now() - started).slice(0, (stream.columns || 120) - 1)}`)
  const timer = setInterval(() => (tty ? draw() : stream.write(`${new Date().toISOString()} ${options.prefix} ${statusText(totals, Date.now() - started)}\n`)), tty ? 1000 : options.summaryMs ?? 60_000)
  timer.unref()
  return {
    totals,
    log(line) {
      if (tty) {
        stream.write(`\r\x1b[2K${options.prefix} ${line}\n`)
        draw()
      } else {
        stream.write(`${new Date().toISOString()} ${options.prefix} ${line}\n`)
      }
    },
    stop() {
      clearInterval(timer)
      if (tty) { draw(); stream.write('\n') }
    },
  }
}
