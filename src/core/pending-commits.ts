/**
 * Requests whose job was pushed before their accept committed (the dispatch fast path,
 * `generations.ts`). Until the commit's outcome is known such a request is waiting without
 * a row to read, and its settlement waits; an accept that failed settles as nothing.
 */
export class PendingCommits {
  private readonly pending = new Map<string, Promise<boolean>>()

  /** Starts tracking `request`; call the returned function with the accept's outcome. */
  expect(request: string): (recorded: boolean) => void {
    let resolve!: (recorded: boolean) => void
    this.pending.set(request, new Promise<boolean>((r) => (resolve = r)))
    return (recorded) => {
      this.pending.delete(request)
      resolve(recorded)
    }
  }

  /** True while the request's accept is on its way. */
  has(request: string): boolean {
    return this.pending.has(request)
  }

  /** Whether the request is recorded: at once for one not tracked, after its commit for one that is. */
  recorded(request: string): Promise<boolean> | true {
    return this.pending.get(request) ?? true
  }
}
