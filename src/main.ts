/** The broker process: read the environment once, start, and drain on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from './config.js'

async function main(): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`horde-broker: ${error.message}`)
      process.exit(2)
    }
    throw error
  }
  // Loaded only once the configuration is valid: a bad variable fails fast, before the
  // database driver, Redis client and HTTP stack are even loaded.
  const { createBroker } = await import('./broker.js')
  const { RedisUnavailableError } = await import('./redis/connect.js')
  let broker
  try {
    broker = await createBroker(config)
  } catch (error) {
    // ADMIN_USERS naming an id that does not exist (or the Anonymous account): one line.
    if ((error as Error)?.name === 'BrokerError' && String((error as Error).message).includes('ADMIN_USERS')) {
      console.error(`horde-broker: ${(error as Error).message}`)
      process.exit(2)
    }
    if (error instanceof RedisUnavailableError) {
      console.error(`horde-broker: ${error.message}`)
      process.exit(3)
    }
    // The model registry (MODELS_FILE) missing or malformed: one line, not a stack trace.
    if (error instanceof Error && error.message.includes('(MODELS_FILE)') || String((error as Error)?.message).startsWith('The model registry')) {
      console.error(`horde-broker: ${(error as Error).message}`)
      process.exit(2)
    }
    throw error
  }
  let url
  try {
    url = await broker.listen()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const reason = code === 'EADDRINUSE' ? 'is in use by another process' : code === 'EACCES' ? 'needs privileges this user lacks' : 'is not an address of this machine'
      console.error(`horde-broker: cannot listen on ${config.host}:${config.port}: the port ${reason} (${code}); set PORT/HOST`)
      await broker.close().catch(() => {})
      process.exit(4)
    }
    throw error
  }
  broker.app.log.info({ url, redis: broker.redisTarget.source, dataDir: config.dataDir }, 'horde-broker listening')

  // The first signal drains: running jobs finish (up to DRAIN_SECONDS), everyone else is told
  // to reconnect elsewhere, what is left goes back to the queue. A second signal exits at once.
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      broker.app.log.warn({ signal }, 'second signal: exiting now; jobs still running come back after their lock expires')
      process.exit(1)
    }
    stopping = true
    const seconds = config.drainSeconds
    broker.app.log.info({ signal, seconds, running: broker.core.runner.size }, 'draining')
    const force = setTimeout(() => process.exit(1), (seconds + 15) * 1000)
    force.unref()
    broker.drain(seconds)
      .then((outcome) => {
        broker.app.log.info(outcome, 'drained')
        return broker.close()
      })
      .then(() => process.exit(0), (error) => {
        console.error(error)
        process.exit(1)
      })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
