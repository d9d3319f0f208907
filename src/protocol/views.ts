/**
 * Shapes of what the broker shows about accounts and requests, shared by REST (OpenAPI) and the
 * sockets, so both doors describe one thing one way.
 */
import { Type, type Static } from '@sinclair/typebox'

/** Totals by balance category, in kudos. */
export const Totals = Type.Object({
  earned_generation: Type.Number(),
  earned_uptime: Type.Number(),
  spent: Type.Number(),
  sent: Type.Number(),
  received: Type.Number(),
  awarded: Type.Number(),
})

/** A user's public fields. */
export const PublicUser = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  kudos: Type.Number(),
  created_at: Type.String(),
  roles: Type.Array(Type.String()),
})
export type PublicUser = Static<typeof PublicUser>

/** The broker's view of a generation request (`GET /v1/generate/:id`, the client socket's `attached`). */
export interface RequestView {
  id: string
  state: 'waiting' | 'running' | 'done' | 'failed' | 'cancelled'
  position?: number | null
  is_possible?: boolean
  attempt?: number
  worker?: string | null
  model?: string | null
  text?: string | null
  tokens?: number | null
  kudos?: number | null
  error?: string | null
  created_at: string
  finished_at?: string | null
}
