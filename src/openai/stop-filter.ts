/**
 * Stop sequences on a stream of text. OpenAI's answers end before a stop sequence and never
 * contain it; a horde worker's text may run through one (backends differ, and the demo one
 * ignores them). The filter passes text on as it comes, except a tail that could be the
 * start of a stop sequence, which it holds until the next piece settles it; once a stop
 * sequence is complete, everything from it on is dropped.
 */
export class StopFilter {
  private held = ''
  private done = false
  private readonly stops: readonly string[]

  constructor(stops: readonly string[]) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))]
  }

  /** True once a stop sequence was seen: nothing more will pass. */
  get stopped(): boolean {
    return this.done
  }

  /** Takes the next piece of text; returns what can be passed on now (maybe ''). */
  push(text: string): string {
    if (this.done) return ''
    const buffer = this.held + text
    let cut = -1
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop)
      if (at >= 0 && (cut < 0 || at < cut)) cut = at
    }
    if (cut >= 0) {
      this.done = true
      this.held = ''
      return buffer.slice(0, cut)
    }
    const keep = this.partialTail(buffer)
    this.held = buffer.slice(buffer.length - keep)
    return buffer.slice(0, buffer.length - keep)
  }

  /** The text ended: what was held back was no stop sequence after all. */
  flush(): string {
    const rest = this.done ? '' : this.held
    this.held = ''
    return rest
  }

  /** Length of the longest tail of `buffer` that is a proper prefix of a stop sequence. */
  private partialTail(buffer: string): number {
    let longest = 0
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, buffer.length); n > longest; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          longest = n
          break
        }
      }
    }
    return longest
  }
}
