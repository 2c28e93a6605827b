// Automerge actor ids bound to the person's key, as the Rust clients make
// them: the 32-byte ed25519 public key followed by this browser's 8 device
// bytes, in hex. The relay binds such an actor only to the key it starts
// with, and history can name the person behind every change.
//
// automerge-repo makes each DocHandle's document with a random actor. Before
// every local change the handle's document is swapped for a clone with our
// actor (a clone keeps the history; only the actor of new changes differs).

import * as A from "@automerge/automerge/slim"
import type { DocHandle } from "@automerge/automerge-repo/slim"
import { fromBase58, hex } from "../lib/encoding"

export function actorFor(publicKey: string, device: Uint8Array): string {
  const key = fromBase58(publicKey)
  if (!key || key.length !== 32) throw new Error("a public key is 32 bytes of base58")
  return hex(key) + hex(device)
}

/** Makes `handle`'s document write as `actor` from now on. */
export function adoptActor(handle: DocHandle<unknown>, actor: string): void {
  if (A.getActorId(handle.doc() as A.Doc<unknown>) === actor) return
  handle.update(doc => A.clone(doc as A.Doc<unknown>, { actor }))
}

/** The actor of every change of `doc`, oldest first. */
export function changeActors(doc: A.Doc<unknown>): string[] {
  return A.getAllChanges(doc).map(change => A.decodeChange(change).actor)
}
