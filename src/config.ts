/**
 * Configuration, parsed once from the environment and frozen. Nothing below
 * `main.ts` reads `process.env`: everything it needs is handed a `Config`.
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import type { CreditLines } from './economy/payment.js'
import { adminUsers, ConfigError, creditLine, int, num, oneOf, trustedProxies, url, type Env } from './config-parse.js'

export { ConfigError }

export interface KudosConfig {
  /** Divisor of the model size in the generation reward (`tokens * P / divisor * ...`). */
  readonly generationDivisor: number
  /** Uptime base per 10 minutes, before the context and model factors. */
  readonly uptimeBase: number
  /** Seconds of observed online time that earn one uptime period's reward. */
  readonly uptimePeriodSeconds: number
  /** How often accrued uptime is posted to the ledger, per worker, in seconds. */
  readonly uptimeFlushSeconds: number
  /** Largest amount one transfer or award may move, in kudos. */
  readonly maxTransfer: number
  /** Kudos added to a waiting request's priority for every 10 s it waited (0 = strict kudos order). */
  readonly ageingBonusPer10s: number
  /**
   * How far below zero each kind of payer's debt funds workers, milli-kudos (null: no limit);
   * beyond it the payer still pays, and the credit goes to the system account (economy/payment.ts).
   */
  readonly creditLines: CreditLines
}

export interface LimitsConfig {
  /** Largest WebSocket frame or HTTP body accepted, in bytes. */
  readonly maxFrameBytes: number
  /** Longest prompt accepted, in characters. */
  readonly maxPromptChars: number
  /** Largest `max_length` a request may ask for, in tokens. */
  readonly maxLength: number
  /** Largest `max_context_length` a request may ask for, in tokens. */
  readonly maxContextLength: number
  /** Requests one registered user may have waiting or running at once. */
  readonly maxActivePerUser: number
  /** Requests the Anonymous account may have waiting or running at once, per client IP. */
  readonly maxActiveAnonymousPerIp: number
  /** Request classes no worker serves in which one account may have requests waiting at once. */
  readonly maxUnservedClassesPerUser: number
  /** Submissions per second per user (per IP for anonymous). */
  readonly submitsPerSecond: number
  /** Bytes a socket may have buffered and unsent before it is treated as a slow reader. */
  readonly sendBufferBytes: number
  /** Seconds a request may wait in the queue before it expires. */
  readonly requestTtlSeconds: number
  /** WebSocket connections allowed per client IP. */
  readonly connectionsPerIp: number
  /** Time a client has to send a whole HTTP request (headers and body), in ms. */
  readonly httpRequestTimeoutMs: number
  /** TCP connections per client address, HTTP and WebSocket together (a trusted proxy is not counted). */
  readonly httpConnectionsPerIp: number
  /** WebSocket upgrades per second per client IP (a burst of twice that is allowed). */
  readonly upgradesPerSecond: number
  /** Characters of generated text one job may relay and keep. */
  readonly maxJobTextChars: number
  /** Accounts one address may register per minute. */
  readonly registrationsPerMinute: number
  /** Login attempts (key login, OAuth start and callback, account link) per address per minute. */
  readonly loginsPerMinute: number
  /** Wrong API keys one address may present per minute before its keyed requests get 429. */
  readonly badKeysPerMinute: number
}

export interface BotConfig {
  /** Commands per second one API key may send over the bot channel (all its sockets together). */
  readonly commandsPerSecond: number
  /** Commands a key may send at once after a quiet spell (the token bucket's size). */
  readonly commandBurst: number
  /** Commands one bot socket may have accepted but not yet answered; more are refused with `slow_down`. */
  readonly maxInFlight: number
  /** Commands one bot socket runs per event-loop turn before yielding to other sockets. */
  readonly batchSize: number
}

/** The OAuth providers the broker knows how to log in with. */
export const OAUTH_PROVIDERS = ['discord', 'github', 'google'] as const
export type OAuthProviderName = (typeof OAUTH_PROVIDERS)[number]

export interface OAuthProviderConfig {
  readonly clientId: string
  readonly clientSecret: string
  /** Where the browser is sent to approve the login. */
  readonly authorizeUrl: string
  /** Where the broker trades the code for an access token. */
  readonly tokenUrl: string
  /** Where the broker reads the user's id and name with the token. */
  readonly userInfoUrl: string
}

/** The endpoints each provider uses in production; each is overridable (tests, private deployments). */
export const OAUTH_DEFAULTS: Record<OAuthProviderName, Pick<OAuthProviderConfig, 'authorizeUrl' | 'tokenUrl' | 'userInfoUrl'>> = {
  discord: {
    authorizeUrl: 'https://discord.com/oauth2/authorize',
    tokenUrl: 'https://discord.com/api/oauth2/token',
    userInfoUrl: 'https://discord.com/api/users/@me',
  },
  github: {
    authorizeUrl: 'https://github.com/login/oauth/authorize',
    tokenUrl: 'https://github.com/login/oauth/access_token',
    userInfoUrl: 'https://api.github.com/user',
  },
  google: {
    authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    userInfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
  },
}

export interface WebConfig {
  /** Key that signs session and login cookies. Random per process when unset and no provider is configured. */
  readonly sessionSecret: string
  /** Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client; empty: none. */
  readonly trustProxy: readonly string[]
  /** How long a login lasts, in seconds. */
  readonly sessionMaxAgeSeconds: number
  /** Seconds between two status pushes on `/v1/status/live`. */
  readonly statusPushSeconds: number
  /** Providers with a client id and secret; the others are not offered. */
  readonly oauth: Readonly<Partial<Record<OAuthProviderName, OAuthProviderConfig>>>
}

/** The OpenAI-compatible endpoint (src/openai/, docs/openai-api.md). */
export interface OpenAiConfig {
  /** Names the endpoint accepts as `model` besides horde model names: alias -> models (empty: any model). */
  readonly aliases: Readonly<Record<string, readonly string[]>>
  /** `max_tokens` of a chat completion that sets none (OpenAI's own default is the model's limit). */
  readonly defaultMaxTokens: number
}

/** The AI Horde v2 API (src/horde-api/, docs/horde-api.md). */
export interface HordeApiConfig {
  /** Seconds a worker's pop is held open waiting for a job before it is answered empty. */
  readonly popWaitSeconds: number
  /** Seconds a popped job is leased (the pop's `ttl`): no submit by then sends it back to the queue. */
  readonly jobTtlSeconds: number
  /** Seconds a polling worker stays online after its last pop or submit. */
  readonly workerIdleSeconds: number
}

export interface Config {
  readonly host: string
  readonly port: number
  /** Folder holding the SQLite database and, when the broker starts one, the private Redis. */
  readonly dataDir: string
  /** Redis to use; when unset the broker tries 127.0.0.1:6379 and then starts its own. */
  readonly redisUrl: string | undefined
  /** Prefix for every Redis key the broker writes. */
  readonly redisPrefix: string
  /**
   * `CLUSTER=on`: several broker processes share one Redis (and one database). Request events,
   * control messages and the per-address limits then cross Redis; off, they stay in this
   * process (faster). Needs `REDIS_URL` and `SESSION_SECRET`.
   */
  readonly cluster: boolean
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** JSON file of known models and their sizes in billions of parameters. */
  readonly modelsFile: string
  /** Seconds between server pings to workers; a worker silent for two intervals is dropped. */
  readonly heartbeatSeconds: number
  /** Public base URL, used for OAuth redirects and secure cookies. */
  readonly publicUrl: string
  /** Seconds a dispatched job stays locked without renewal: a crashed process's jobs return after this. */
  readonly jobLockSeconds: number
  /** On SIGTERM, how long running jobs may go on before what is left goes back to the queue. */
  readonly drainSeconds: number
  /** Seconds between checks that every accepted, unfinished request is queued in Redis. */
  readonly reconcileSeconds: number
  /** Dispatch attempts before a job that keeps losing its worker fails for good. */
  readonly jobMaxAttempts: number
  /** `synchronous` pragma for the ledger: FULL survives power loss, NORMAL only process crashes. */
  readonly sqliteSynchronous: 'FULL' | 'NORMAL'
  /** PostgreSQL to store everything in (`DATABASE_URL`); unset: the embedded SQLite file in `dataDir`. */
  readonly databaseUrl: string | undefined
  /** `ADMIN_USERS`: the users (names, or numeric ids) who hold the admin role; empty: roles are left as they are. */
  readonly adminUsers: readonly string[]
  /** Seconds between two reads of the moderation trail (changes made by `horde-admin` or another process). */
  readonly moderationPollSeconds: number
  readonly kudos: KudosConfig
  readonly limits: LimitsConfig
  readonly bot: BotConfig
  readonly web: WebConfig
  readonly openai: OpenAiConfig
  readonly hordeApi: HordeApiConfig
}

function oauthProviders(env: Env): WebConfig['oauth'] {
  const providers: Partial<Record<OAuthProviderName, OAuthProviderConfig>> = {}
  for (const name of OAUTH_PROVIDERS) {
    const prefix = `OAUTH_${name.toUpperCase()}_`
    const clientId = env[`${prefix}CLIENT_ID`]?.trim() || undefined
    const clientSecret = env[`${prefix}CLIENT_SECRET`]?.trim() || undefined
    const endpoints = {
      authorizeUrl: url(env, `${prefix}AUTHORIZE_URL`, ['http:', 'https:']) ?? OAUTH_DEFAULTS[name].authorizeUrl,
      tokenUrl: url(env, `${prefix}TOKEN_URL`, ['http:', 'https:']) ?? OAUTH_DEFAULTS[name].tokenUrl,
      userInfoUrl: url(env, `${prefix}USERINFO_URL`, ['http:', 'https:']) ?? OAUTH_DEFAULTS[name].userInfoUrl,
    }
    if (!clientId && !clientSecret) continue
    if (!clientId) throw new ConfigError(`${prefix}CLIENT_ID`, `required when ${prefix}CLIENT_SECRET is set`)
    if (!clientSecret) throw new ConfigError(`${prefix}CLIENT_SECRET`, `required when ${prefix}CLIENT_ID is set`)
    providers[name] = { clientId, clientSecret, ...endpoints }
  }
  return providers
}

/** `CLUSTER`: on needs a shared Redis (a private one would be each process's own) and a shared session key. */
function cluster(env: Env): boolean {
  const on = oneOf(env, 'CLUSTER', 'off', ['on', 'off'] as const) === 'on'
  if (on && !env.REDIS_URL) throw new ConfigError('REDIS_URL', 'required when CLUSTER=on (every process must use the same Redis)')
  return on
}

function sessionSecret(env: Env, loginsEnabled: boolean, clustered: boolean): string {
  const raw = env.SESSION_SECRET
  if (raw === undefined || raw === '') {
    if (loginsEnabled) throw new ConfigError('SESSION_SECRET', 'required when an OAuth provider is configured (at least 32 characters)')
    if (clustered) throw new ConfigError('SESSION_SECRET', 'required when CLUSTER=on: every process must sign cookies with the same key (at least 32 characters)')
    // Nobody can log in without a provider, so no cookie needs to outlive this process.
    return randomBytes(32).toString('base64url')
  }
  if (raw.length < 32) throw new ConfigError('SESSION_SECRET', `expected at least 32 characters, got ${raw.length}`)
  return raw
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Reads and validates the whole configuration; throws `ConfigError` naming the first bad variable. */
export function loadConfig(env: Env, cwd = process.cwd()): Config {
  const port = int(env, 'PORT', 7001, 0, 65535)
  const host = env.HOST || '127.0.0.1'
  const dataDir = path.resolve(cwd, env.DATA_DIR || 'data')
  const config: Config = {
    host,
    port,
    dataDir,
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisPrefix: env.REDIS_PREFIX || 'hb',
    cluster: cluster(env),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    modelsFile: path.resolve(cwd, env.MODELS_FILE || 'config/models.json'),
    heartbeatSeconds: num(env, 'HEARTBEAT_SECONDS', 15, 0.05, 3600),
    publicUrl: url(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `http://${host}:${port}`,
    jobLockSeconds: num(env, 'JOB_LOCK_SECONDS', 30, 0.5, 3600),
    drainSeconds: num(env, 'DRAIN_SECONDS', 30, 0, 3600),
    reconcileSeconds: num(env, 'RECONCILE_SECONDS', 30, 0.1, 86400),
    jobMaxAttempts: int(env, 'JOB_MAX_ATTEMPTS', 5, 1, 100),
    sqliteSynchronous: oneOf(env, 'SQLITE_SYNCHRONOUS', 'FULL', ['FULL', 'NORMAL'] as const),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    adminUsers: adminUsers(env),
    moderationPollSeconds: num(env, 'MODERATION_POLL_SECONDS', 2, 0.05, 3600),
    kudos: {
      generationDivisor: num(env, 'KUDOS_GENERATION_DIVISOR', 125, 1, 1e6),
      uptimeBase: num(env, 'KUDOS_UPTIME_BASE', 25, 0, 1e6),
      uptimePeriodSeconds: num(env, 'KUDOS_UPTIME_PERIOD_SECONDS', 600, 1, 86400),
      uptimeFlushSeconds: num(env, 'KUDOS_UPTIME_FLUSH_SECONDS', 60, 0.01, 86400),
      maxTransfer: num(env, 'KUDOS_MAX_TRANSFER', 1e9, 0.001, 1e12),
      ageingBonusPer10s: num(env, 'KUDOS_AGEING_BONUS', 0, 0, 1e9),
      creditLines: {
        anonymous: creditLine(env, 'KUDOS_ANON_CREDIT', null),
        oauth: creditLine(env, 'KUDOS_OAUTH_CREDIT', 250_000),
        username: creditLine(env, 'KUDOS_USER_CREDIT', 25_000),
      },
    },
    limits: {
      maxFrameBytes: int(env, 'MAX_FRAME_BYTES', 256 * 1024, 1024, 64 * 1024 * 1024),
      maxPromptChars: int(env, 'MAX_PROMPT_CHARS', 100_000, 1, 10_000_000),
      maxLength: int(env, 'MAX_LENGTH', 4096, 1, 1_000_000),
      maxContextLength: int(env, 'MAX_CONTEXT_LENGTH', 262_144, 1, 10_000_000),
      maxActivePerUser: int(env, 'MAX_ACTIVE_PER_USER', 50, 1, 1_000_000),
      maxActiveAnonymousPerIp: int(env, 'MAX_ACTIVE_ANON_PER_IP', 5, 1, 1_000_000),
      maxUnservedClassesPerUser: int(env, 'MAX_UNSERVED_CLASSES_PER_USER', 5, 1, 1_000_000),
      submitsPerSecond: num(env, 'SUBMITS_PER_SECOND', 20, 0.01, 1e6),
      sendBufferBytes: int(env, 'SEND_BUFFER_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
      requestTtlSeconds: num(env, 'REQUEST_TTL_SECONDS', 600, 1, 7 * 86400),
      connectionsPerIp: int(env, 'CONNECTIONS_PER_IP', 200, 1, 10_000_000),
      httpConnectionsPerIp: int(env, 'HTTP_CONNECTIONS_PER_IP', 300, 1, 10_000_000),
      httpRequestTimeoutMs: Math.round(num(env, 'HTTP_REQUEST_TIMEOUT_SECONDS', 30, 0.1, 3600) * 1000),
      upgradesPerSecond: num(env, 'UPGRADES_PER_SECOND', 50, 0.1, 1e6),
      maxJobTextChars: int(env, 'MAX_JOB_TEXT_CHARS', 1_048_576, 1, 1_000_000_000),
      registrationsPerMinute: int(env, 'REGISTRATIONS_PER_MINUTE', 30, 1, 1_000_000),
      loginsPerMinute: int(env, 'LOGINS_PER_MINUTE', 20, 1, 1_000_000),
      badKeysPerMinute: int(env, 'BAD_KEYS_PER_MINUTE', 30, 1, 1_000_000),
    },
    bot: {
      commandsPerSecond: num(env, 'BOT_COMMANDS_PER_SECOND', 50, 0.01, 1e6),
      commandBurst: int(env, 'BOT_COMMAND_BURST', 200, 1, 1_000_000),
      maxInFlight: int(env, 'BOT_MAX_IN_FLIGHT', 256, 1, 1_000_000),
      batchSize: int(env, 'BOT_BATCH_SIZE', 32, 1, 10_000),
    },
    web: webConfig(env),
    openai: openAiConfig(env),
    hordeApi: {
      popWaitSeconds: num(env, 'HORDE_API_POP_WAIT_SECONDS', 20, 0, 35),
      jobTtlSeconds: num(env, 'HORDE_API_JOB_TTL_SECONDS', 150, 1, 3600),
      workerIdleSeconds: num(env, 'HORDE_API_WORKER_IDLE_SECONDS', 300, 1, 86400),
    },
  }
  return deepFreeze(config)
}

function webConfig(env: Env): WebConfig {
  const oauth = oauthProviders(env)
  return {
    sessionSecret: sessionSecret(env, Object.keys(oauth).length > 0, cluster(env)),
    trustProxy: trustedProxies(env),
    sessionMaxAgeSeconds: int(env, 'SESSION_MAX_AGE_SECONDS', 30 * 86400, 60, 365 * 86400),
    statusPushSeconds: num(env, 'STATUS_PUSH_SECONDS', 2, 0.05, 3600),
    oauth,
  }
}

/** `OPENAI_MODEL_ALIASES`: `name=model,model;name=*`, where `*` is any model. */
function openAiConfig(env: Env): OpenAiConfig {
  const raw = env.OPENAI_MODEL_ALIASES ?? 'any=*'
  const aliases: Record<string, string[]> = {}
  for (const entry of raw.split(';').map((e) => e.trim()).filter(Boolean)) {
    const [name, list, extra] = entry.split('=').map((part) => part.trim())
    if (!name || list === undefined || extra !== undefined || list === '') throw new ConfigError('OPENAI_MODEL_ALIASES', `expected name=model,model or name=*, got ${JSON.stringify(entry)}`)
    if (Object.hasOwn(aliases, name)) throw new ConfigError('OPENAI_MODEL_ALIASES', `alias ${name} is defined twice`)
    const models = list === '*' ? [] : list.split(',').map((m) => m.trim())
    if (models.some((m) => m === '' || m === '*' || m.length > 200)) throw new ConfigError('OPENAI_MODEL_ALIASES', `alias ${name}: models are comma-separated names (or * alone)`)
    aliases[name] = models
  }
  const maxLength = int(env, 'MAX_LENGTH', 4096, 1, 1_000_000)
  return { aliases, defaultMaxTokens: int(env, 'OPENAI_DEFAULT_MAX_TOKENS', Math.min(512, maxLength), 1, maxLength) }
}

function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) if (inner && typeof inner === 'object') deepFreeze(inner)
  return Object.freeze(value)
}
