/**
 * Prometheus metrics, in a registry of the broker's own (several brokers can live in one
 * test process). Later parts register their metrics here too.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const m = {
    registry,
    httpRequests: new Counter({ name: 'horde_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'] as const, registers: [registry] }),
    ledgerPostings: new Counter({ name: 'horde_ledger_postings_total', help: 'Ledger postings written, by entry kind', labelNames: ['kind'] as const, registers: [registry] }),
    redisUp: new Gauge({ name: 'horde_redis_up', help: '1 when the last Redis health check answered', registers: [registry] }),
    dbUp: new Gauge({ name: 'horde_db_up', help: '1 when the last database health check answered', registers: [registry] }),
    workersConnected: new Gauge({ name: 'horde_workers_connected', help: 'Worker sockets connected to this process', registers: [registry] }),
    clientsConnected: new Gauge({ name: 'horde_clients_connected', help: 'Client sockets connected to this process', registers: [registry] }),
    botsConnected: new Gauge({ name: 'horde_bots_connected', help: 'Bot sockets connected to this process', registers: [registry] }),
    waitingRequests: new Gauge({ name: 'horde_waiting_requests', help: 'Requests waiting in the queue, by model', labelNames: ['model'] as const, registers: [registry] }),
    dispatchSeconds: new Histogram({ name: 'horde_dispatch_seconds', help: 'Submit to job pushed to a worker', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry] }),
    fastDispatches: new Counter({ name: 'horde_fast_dispatch_total', help: 'New requests that took the dispatch fast path, by what its claim took: the new job, an older one, or none', labelNames: ['claimed'] as const, registers: [registry] }),
    firstTokenSeconds: new Histogram({ name: 'horde_time_to_first_token_seconds', help: 'Submit to first chunk relayed', buckets: [0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry] }),
    tokensRelayed: new Counter({ name: 'horde_chunks_relayed_total', help: 'Chunks relayed from workers', registers: [registry] }),
    jobs: new Counter({ name: 'horde_jobs_total', help: 'Jobs ended, by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    boundedDeliveries: new Counter({ name: 'horde_bounded_deliveries_total', help: 'Deliveries faster than their model plausibly generates, billed at the speed bound', registers: [registry] }),
    workersFlagged: new Counter({ name: 'horde_workers_flagged_total', help: 'Workers flagged for moderators for hitting the plausibility bounds again and again', registers: [registry] }),
    unfundedMilli: new Counter({ name: 'horde_unfunded_millikudos_total', help: 'Milli-kudos of rewards that payers past their credit line could not fund (credited to the system account)', registers: [registry] }),
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>
