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
    if (error instanceof RedisUnavailableError) {
      console.error(`horde-broker: ${error.message}`)
      process.exit(3)
    }
    throw error
  }
  const url = await broker.listen()
  broker.app.log.info({ url, redis: broker.redisTarget.source, dataDir: config.dataDir }, 'horde-broker listening')

  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    broker.app.log.info({ signal }, 'draining')
    const force = setTimeout(() => process.exit(1), 15_000)
    force.unref()
    broker.close().then(() => process.exit(0), (error) => {
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
