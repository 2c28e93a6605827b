// The automerge module as @automerge/prosemirror sees it (the build points
// that package's imports here): everything as is, except `spans`, which is
// kept per document state instead of recomputed.
//
// The binding asks for the body's spans three times per keystroke (before
// the change, inside it, after it); each call walks the whole text, about
// 20 ms on a 50,000-character document. Here:
// - the spans of a document state are kept (a state's object never
//   changes; its spans are handed out as copies, since the binding patches
//   the arrays it gets);
// - when a handle's document changes, the new state's spans are the old
//   ones with the change's patches applied (the binding's own
//   `patchSpans`), so no walk is needed at all;
// - inside a change the binding makes, the first call gets the spans of the
//   state the change starts from (`armChange`);
// - a state not seen before whose heads are those of the last state kept
//   gets that state's spans: automerge-repo swaps the handle's document for
//   a new object when a sync message brings nothing new (the relay's
//   acknowledgement after every keystroke), and without this the next
//   keystroke walked the whole text again.
// Anything not covered (a patch that replaces the body, an error) falls
// back to automerge's own `spans`.

import * as real from "@automerge/automerge/slim"
import { patchSpans } from "@automerge/prosemirror/dist/maintainSpans.js"

export * from "@automerge/automerge/slim"

const BODY = "body"
const kept = new WeakMap<object, real.Span[]>()
/** The last state kept, by its heads (equal heads, equal text). */
let latest: { heads: string; spans: real.Span[] } | null = null

function keep(doc: real.Doc<unknown>, spans: real.Span[]): void {
  kept.set(doc as object, spans)
  latest = { heads: real.getHeads(doc).join(","), spans }
}

function known(doc: real.Doc<unknown>): real.Span[] | undefined {
  const found = kept.get(doc as object)
  if (found || !latest || real.getHeads(doc).join(",") !== latest.heads) return found
  kept.set(doc as object, latest.spans)
  return latest.spans
}
let armed: real.Span[] | null = null
/** True while a change armed by `armChange` runs. */
let inChange = false

function isBody(path: real.Prop[]): boolean {
  return path.length === 1 && path[0] === BODY
}

function copy(spans: real.Span[]): real.Span[] {
  return spans.map(span =>
    span.type === "text"
      ? { type: "text", value: span.value, ...(span.marks ? { marks: { ...span.marks } } : {}) }
      : { type: "block", value: copyBlock(span.value) },
  )
}

function copyBlock(value: { [key: string]: real.MaterializeValue }): { [key: string]: real.MaterializeValue } {
  const out: { [key: string]: real.MaterializeValue } = { ...value }
  if (Array.isArray(value.parents)) out.parents = [...value.parents]
  if (value.attrs && typeof value.attrs === "object" && !Array.isArray(value.attrs)) out.attrs = { ...(value.attrs as object) } as real.MaterializeValue
  return out
}

export function spans<T>(doc: real.Doc<T>, path: real.Prop[]): real.Span[] {
  if (!isBody(path)) return real.spans(doc, path)
  if (armed) {
    const first = armed
    armed = null
    return first
  }
  if (inChange) return lazy(doc, path)
  const found = known(doc)
  if (found) return copy(found)
  const fresh = real.spans(doc, path)
  keep(doc, copy(fresh))
  return fresh
}

/** The body spans of document state `doc` (kept), as a copy. */
export function bodySpans(doc: real.Doc<unknown>): real.Span[] {
  return spans(doc, [BODY])
}

/** The next call to `spans` (inside the change about to run) gets `doc`'s. */
export function armChange(doc: real.Doc<unknown>): void {
  armed = bodySpans(doc)
  inChange = true
}

export function disarm(): void {
  armed = null
  inChange = false
}

/**
 * Inside a change the binding asks again after each step it applies, also
 * after the last one, whose answer it never reads. The walk is done on
 * first use only: every reader reads the spans before it changes the
 * document again.
 */
function lazy<T>(doc: real.Doc<T>, path: real.Prop[]): real.Span[] {
  let walked: real.Span[] | null = null
  const walk = () => (walked ??= real.spans(doc, path))
  return new Proxy([] as real.Span[], {
    get: (_target, key) => {
      const spans = walk()
      const value = Reflect.get(spans, key, spans)
      return typeof value === "function" ? value.bind(spans) : value
    },
    has: (_target, key) => Reflect.has(walk(), key),
    ownKeys: () => Reflect.ownKeys(walk()),
    getOwnPropertyDescriptor: (_target, key) => Reflect.getOwnPropertyDescriptor(walk(), key),
    set: (_target, key, value) => Reflect.set(walk(), key, value),
  })
}

/** Keeps `after`'s spans from `before`'s and the patches between them. */
export function advance(before: real.Doc<unknown>, after: real.Doc<unknown>, patches: real.Patch[]): void {
  const from = known(before)
  if (!from || kept.has(after as object)) return
  const next = copy(from)
  try {
    for (const patch of patches) {
      if (patch.path[0] !== BODY) continue
      if (patch.path.length === 1 && patch.action !== "mark") return
      patchSpans([BODY], next, patch)
    }
  } catch {
    return
  }
  keep(after, next)
}

export const next = { ...real.next, spans }
