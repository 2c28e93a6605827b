// The relay's id (the token audience), from GET /api/info, kept locally so
// that a page opened offline can still mint tokens once the relay is back.

import * as idb from "../lib/idb"
import { relayInfo } from "../net/api"

const KEY = "relay-id"

let known: string | null = null

/** The relay id if known (from this page or an earlier one). */
export async function cachedRelayId(): Promise<string | null> {
  if (known) return known
  known = (await idb.get<string>(KEY).catch(() => undefined)) ?? null
  return known
}

/** Asks the relay for its id; falls back to the kept one when unreachable. */
export async function relayId(): Promise<string> {
  try {
    const info = await relayInfo()
    if (info.auth === "open") throw new Error("This relay runs in --open mode, without identities: the web app needs a relay with tokens.")
    if (info.relay_id !== known) {
      known = info.relay_id
      await idb.put(KEY, known).catch(() => undefined)
    }
    return info.relay_id
  } catch (error) {
    const cached = await cachedRelayId()
    if (cached) return cached
    throw error
  }
}
