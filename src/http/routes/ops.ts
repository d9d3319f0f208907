/** Operations: health, Prometheus metrics. */
import type { FastifyInstance } from 'fastify'
import type { Services } from '../../services.js'

export function registerOpsRoutes(app: FastifyInstance, services: Services): void {
  const { store, redis, metrics } = services

  app.get('/health', { schema: { summary: 'Database and Redis health', tags: ['ops'] } }, async (_request, reply) => {
    let db = false
    let redisOk = false
    try {
      db = await store.health()
    } catch { db = false }
    try {
      redisOk = (await Promise.race([redis.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000))])) === 'PONG'
    } catch { redisOk = false }
    metrics.dbUp.set(db ? 1 : 0)
    metrics.redisUp.set(redisOk ? 1 : 0)
    // A draining process tells its load balancer to send nothing more.
    if (services.draining) return reply.status(503).send({ status: 'draining', db: db ? 'ok' : 'down', redis: redisOk ? 'ok' : 'down' })
    const ok = db && redisOk
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', db: db ? 'ok' : 'down', redis: redisOk ? 'ok' : 'down' })
  })

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    await services.refreshMetrics?.().catch((error) => services.log.warn({ err: error }, 'metrics refresh failed'))
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}
