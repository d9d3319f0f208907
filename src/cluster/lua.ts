/**
 * Runs a Lua script by its SHA1, loading it on the first NOSCRIPT (a fresh or restarted
 * Redis has an empty script cache). Scripts are sent once per server, not per call.
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

export interface Script {
  /** The script text, header included. */
  readonly lua: string
  readonly sha: string
}

export function defineScript(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

export async function runScript(redis: Redis, script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args)
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
    return redis.eval(script.lua, keys.length, ...keys, ...args)
  }
}
