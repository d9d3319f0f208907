/**
 * A fixed-size time series: `buckets` slots of `bucketMs` each, in a ring, so what the
 * broker keeps for a chart never grows with how long it runs or how busy it is. A value
 * lands in the slot of its time (a slot left from an earlier lap is reset first); reading
 * returns the last `buckets` slots up to now, oldest first. Times are passed in, so the
 * caller's clock (a test's too) is the only clock.
 */

/** How a slot combines the values that land in it. */
export type RollupMode = 'sum' | 'max' | 'last'

export interface RollupOptions {
  /** Width of one slot, ms. */
  bucketMs: number
  /** Slots kept: the series covers `bucketMs * buckets`. */
  buckets: number
  mode: RollupMode
}

/** A series as the chart endpoints serve it. */
export interface SeriesPoints {
  /** Start of the first slot, ms since the epoch. */
  start: number
  /** Width of a slot, seconds. */
  step_s: number
  /** One value per slot, oldest first; null for a slot nothing landed in (a gauge carries its last value instead). */
  values: Array<number | null>
}

export class Rollup {
  private readonly values: Float64Array
  /** The absolute slot number each ring slot holds, -1 when empty. */
  private readonly slots: Float64Array
  /** The last value recorded before the oldest slot kept (what a `last` series carries in). */
  private carried: number | null = null
  /** The slot `carried` came from (undefined for a seed). */
  private carriedSlot: number | undefined
  /** The slot `carried` came from (undefined for a seed). */
  constructor(readonly options: RollupOptions) {
    if (!(options.bucketMs > 0) || !Number.isInteger(options.buckets) || options.buckets < 1) throw new RangeError('bad rollup size')
    this.values = new Float64Array(options.buckets)
    this.slots = new Float64Array(options.buckets).fill(-1)
  }

  /** Records a value at time `at` (ms). A value older than the series covers is dropped. */
  record(value: number, at: number): void {
    const slot = Math.floor(at / this.options.bucketMs)
    const i = slot % this.options.buckets
    const held = this.slots[i]
    if (held > slot) return // a lap behind what is kept
    if (held !== slot) {
      if (held >= 0 && this.options.mode === 'last') this.carryFrom(held)
      this.slots[i] = slot
      this.values[i] = value
      return
    }
    const { mode } = this.options
    this.values[i] = mode === 'sum' ? this.values[i] + value : mode === 'max' ? Math.max(this.values[i], value) : value
  }

  /** Sets what a `last` series starts from when no value is kept yet (a balance read once). */
  seed(value: number): void {
    this.carried = value
  }

  /** The slots up to the one holding `now`, oldest first. */
  points(now: number): SeriesPoints {
    const { bucketMs, buckets, mode } = this.options
    const last = Math.floor(now / bucketMs)
    const first = last - buckets + 1
    const values: Array<number | null> = []
    let carry = mode === 'last' ? this.carriedBefore(first) : null
    for (let slot = first; slot <= last; slot++) {
      const i = ((slot % buckets) + buckets) % buckets
      if (this.slots[i] === slot) {
        values.push(this.values[i])
        if (mode === 'last') carry = this.values[i]
      } else {
        values.push(mode === 'last' ? carry : null)
      }
    }
    return { start: first * bucketMs, step_s: bucketMs / 1000, values }
  }

  /** The sum of every slot kept at `now` (tests; totals under a chart). */
  total(now: number): number {
    return this.points(now).values.reduce<number>((sum, v) => sum + (v ?? 0), 0)
  }

  /** True when nothing is kept that `now` would show. */
  isEmpty(now: number): boolean {
    return this.points(now).values.every((v) => v === null || v === 0)
  }

  private carryFrom(slot: number): void {
    // Remember the newest value that drops out, so a gauge still has a level to draw from.
    const i = slot % this.options.buckets
    const newestDropped = this.carriedSlot === undefined || slot > this.carriedSlot
    if (newestDropped) {
      this.carried = this.values[i]
      this.carriedSlot = slot
    }
  }

  /** The newest value of a slot before `first`: a slot still in the ring but older, or the carried one. */
  private carriedBefore(first: number): number | null {
    let best = -1
    let value: number | null = null
    for (let i = 0; i < this.options.buckets; i++) {
      const slot = this.slots[i]
      if (slot >= 0 && slot < first && slot > best) {
        best = slot
        value = this.values[i]
      }
    }
    if (value !== null && (this.carriedSlot === undefined || best > this.carriedSlot)) return value
    return this.carried
  }
}
