// People's names by public key: from the member list (staff), from names
// written into comments, from presence messages, and our own. Kept locally
// so that names show offline. A name the member list gives is never
// replaced by one a comment or a presence message claims: those are fields
// their writer chose.

import * as idb from "../lib/idb"
import { short } from "../ui/dom"

const KEY = "names"

export class Names {
  private names = new Map<string, string>()
  /** Keys whose name came from the member list. */
  private listed = new Set<string>()
  private saveTimer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly me: { publicKey: string; name: string }) {}

  async restore(): Promise<void> {
    const kept = await idb.get<[string, string][]>(KEY).catch(() => undefined)
    for (const [key, name] of kept ?? []) if (!this.names.has(key)) this.names.set(key, name)
  }

  /** A name from the member list. */
  listedAs(key: string, name: string | null | undefined): void {
    if (key && name) this.listed.add(key)
    this.set(key, name)
  }

  /** A name someone claims for themselves (a comment, presence). */
  learn(key: string, name: string | null | undefined): void {
    if (this.listed.has(key)) return
    this.set(key, name)
  }

  private set(key: string, name: string | null | undefined): void {
    if (!key || !name || this.names.get(key) === name) return
    this.names.set(key, name)
    clearTimeout(this.saveTimer)
    this.saveTimer = setTimeout(() => void idb.put(KEY, [...this.names]).catch(() => undefined), 500)
  }

  /** The person's name, "you" for ourselves, or a short key. */
  of(key: string, youWord = true): string {
    if (key === this.me.publicKey) return youWord ? "You" : this.me.name
    return this.names.get(key) ?? short(key)
  }

  /** Everyone with a known name, for @mentions. */
  known(): { key: string; name: string }[] {
    return [...this.names].map(([key, name]) => ({ key, name }))
  }
}
