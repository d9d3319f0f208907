/**
 * Keyed coalescing of work that must see the latest state but need not run once per
 * request for it: "run now; if a run is already going, run once more after it". Any
 * number of requests during a run fold into a single re-run, which starts after the
 * current run ends and so sees everything those requests were about. Runs of different
 * keys go on side by side.
 *
 * Used where a burst of events would otherwise start a pass per event (a user's balance
 * moving many times a second, jobs arriving at a queue, a worker freeing several slots).
 * `join` is the weaker form for work whose result a request started during a run may
 * share (a reconciliation pass: whoever asks while one runs gets its count).
 *
 * A key is used with one of `run` or `join`, not both.
 */

export interface CoalescerOptions {
  /**
   * Told of a run that threw. The coalescer carries on: a re-run that was asked for still
   * runs (it may succeed where this one failed), and the returned promise still resolves.
   */
  onError(error: unknown): void
}

export class Coalescer<K> {
  private readonly running = new Map<K, Promise<unknown>>()
  private readonly again = new Set<K>()

  constructor(private readonly options: CoalescerOptions) {}

  /**
   * Runs `task` for `key` now, or, when a run for `key` is going, marks it to run once
   * more after that one (with the task that run was started with). Returns the promise of
   * the run in progress, which resolves (never rejects) once it and the re-runs it picked
   * up have ended.
   */
  run(key: K, task: () => Promise<void>): Promise<void> {
    const current = this.running.get(key)
    if (current) {
      this.again.add(key)
      return current as Promise<void>
    }
    const work = this.loop(key, task)
    this.running.set(key, work)
    return work
  }

  /**
   * Runs `task` for `key` now, or, when a run for `key` is going, returns that run's
   * promise without asking for another: the caller shares its result, or its error (which
   * is not passed to `onError`; the callers see it).
   */
  join<T>(key: K, task: () => Promise<T>): Promise<T> {
    const current = this.running.get(key)
    if (current) return current as Promise<T>
    const work = (async () => {
      try {
        return await task()
      } finally {
        this.running.delete(key)
      }
    })()
    this.running.set(key, work)
    return work
  }

  /** True while a run for `key` is going. */
  isRunning(key: K): boolean {
    return this.running.has(key)
  }

  /** Keys with a run going. */
  get size(): number {
    return this.running.size
  }

  /** Resolves when no run of any key is going or due, including runs started meanwhile. */
  async idle(): Promise<void> {
    // A joined run may reject; its callers hear of it, idle() only waits for it to end.
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()])
  }

  private async loop(key: K, task: () => Promise<void>): Promise<void> {
    try {
      do {
        this.again.delete(key)
        try {
          await task()
        } catch (error) {
          this.options.onError(error)
        }
      } while (this.again.has(key))
    } finally {
      this.running.delete(key)
    }
  }
}
