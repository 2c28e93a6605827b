// A scriptable automerge-repo 2.5.6 client peer for rapport's Rust tests
// (driven by tests/src/js_peer.rs).
//
// Usage: node peer.mjs --url ws://127.0.0.1:PORT[/path][?token=...]
//                      [--peer-id ID] [--connect-timeout-ms 10000]
//
// A Repo without storage and with one WebSocketClientAdapter(url) (the URL is
// passed unchanged, query string included). Prints `READY <peerId>` on stdout
// once the server has answered the `join` with a `peer` message (the adapter's
// "peer-candidate", i.e. the repo's "peer" event). If that does not happen in
// --connect-timeout-ms, it prints the reason on stderr and exits with code 2;
// an upgrade the server refuses (e.g. HTTP 401) makes the adapter throw
// `Unexpected server response: 401`, which ends the process (stderr, exit
// code 1) before READY; after READY such errors are only recorded (`errors`).
//
// Then it reads one JSON command per line on stdin and answers each with
// exactly one JSON line on stdout:
//   {"id": <same id>, "ok": true, ...result}   or
//   {"id": <same id>, "ok": false, "error": "..."}
// Commands run concurrently (a pending waitFor does not block a later put), so
// answers may come out of order: match them by id. It exits when stdin closes.
// Diagnostics go to stderr only.
//
// Commands (timeoutMs defaults to 10000):
//   {"op":"create","doc":{...}}                  -> {"url":"automerge:..."}
//   {"op":"find","url":"automerge:...","timeoutMs":N}
//                                                -> {"doc":{...}} | ok:false "Document ... is unavailable"
//   {"op":"put","url":...,"path":["a","b"],"value":<json>}
//                                                -> {"heads":[...]}  (creates missing/non-map intermediates as maps;
//                                                   a string value becomes collaborative text, as automerge 3 does)
//   {"op":"delete","url":...,"path":[...]}       -> {"heads":[...]}
//   {"op":"splice","url":...,"path":["notes"],"index":0,"delete":0,"insert":"text"}
//                                                -> {"heads":[...]}  (Automerge.splice on a text field)
//   {"op":"read","url":...}                      -> {"doc":{...},"heads":[...]}
//   {"op":"waitFor","url":...,"path":[...],"equals":<json>,"timeoutMs":N}
//                                                -> {"doc":{...}} | ok:false "timeout ..."
//   {"op":"flush","timeoutMs":N}                 -> {"docs":K}: every ready document's heads are acknowledged
//                                                   by every connected peer (see flush() below)
//   {"op":"peers"}                               -> {"peers":[peerId,...]}  (connected peers)
//   {"op":"errors"}                              -> {"errors":["...",...]}  (uncaught errors since READY)
// `heads` are automerge change hashes in hex (Automerge.getHeads), not the
// bs58 "URL heads" that DocHandle.heads() returns in automerge-repo 2.x.
import readline from "node:readline"
import { parseArgs } from "node:util"
import { Repo, splice, decodeHeads } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    "peer-id": { type: "string" },
    "connect-timeout-ms": { type: "string" },
  },
})
if (!args.url) {
  console.error("peer.mjs: --url ws://... is required")
  process.exit(64)
}
const connectTimeoutMs = Number(args["connect-timeout-ms"] ?? 10000)
const DEFAULT_TIMEOUT_MS = 10000

const repo = new Repo({
  network: [new WebSocketClientAdapter(args.url)],
  ...(args["peer-id"] ? { peerId: args["peer-id"] } : {}),
})

// The latest sync state per document and peer, for `flush`.
const syncStates = new Map() // `${documentId} ${peerId}` -> syncState
repo.synchronizer.on("sync-state", ({ documentId, peerId, syncState }) => {
  syncStates.set(`${documentId} ${peerId}`, syncState)
})

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n")
}

function toJson(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value))
}

function valueAt(value, path) {
  for (const key of path) {
    if (value === null || typeof value !== "object" || !(key in value)) return undefined
    value = value[key]
  }
  return value
}

// Order-insensitive for object keys, order-sensitive for arrays.
function deepEqual(a, b) {
  if (a === b) return true
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every(k => k in b && deepEqual(a[k], b[k]))
}

function hexHeads(handle) {
  return decodeHeads(handle.heads())
}

function requirePath(cmd) {
  if (!Array.isArray(cmd.path) || cmd.path.length === 0) {
    throw new Error("`path` must be a non-empty array of keys")
  }
  return cmd.path
}

async function handleFor(url, timeoutMs = DEFAULT_TIMEOUT_MS) {
  if (typeof url !== "string") throw new Error("`url` must be an automerge: URL string")
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    return await repo.find(url, { signal })
  } catch (e) {
    if (signal.aborted) throw new Error(`timeout after ${timeoutMs} ms finding ${url}`)
    throw e
  }
}

// Walks to the parent of the last key, creating maps where nothing (or a
// scalar) is in the way, and returns [parent, lastKey].
function parentOf(doc, path) {
  let obj = doc
  for (const key of path.slice(0, -1)) {
    const next = obj[key]
    if (next === null || typeof next !== "object") obj[key] = {}
    obj = obj[key]
  }
  return [obj, path[path.length - 1]]
}

function waitFor(handle, path, equals, timeoutMs) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const doc = toJson(handle.doc())
      if (deepEqual(valueAt(doc, path), equals)) {
        finish()
        resolve({ doc })
        return true
      }
      return false
    }
    const onChange = () => void check()
    const finish = () => {
      clearTimeout(timer)
      handle.off("change", onChange)
    }
    const timer = setTimeout(() => {
      const current = valueAt(toJson(handle.doc()), path)
      finish()
      reject(
        new Error(
          `timeout after ${timeoutMs} ms waiting for ${JSON.stringify(path)} == ${JSON.stringify(equals)}; ` +
            `current value: ${current === undefined ? "(missing)" : JSON.stringify(current)}`,
        ),
      )
    }, timeoutMs)
    handle.on("change", onChange)
    check()
  })
}

// Resolves once, for every ready document this repo holds and every peer that
// document is being synced with, the peer's acknowledged heads (the sync
// state's sharedHeads) include all our heads: i.e. the peer has everything we
// have. `repo.flush()` exists in 2.5.6 but only saves documents to the storage
// adapter (a no-op here, no storage), it does not wait for the network.
async function flush(timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const pending = []
    let docs = 0
    const connected = new Set(repo.peers)
    for (const [documentId, docSync] of Object.entries(repo.synchronizer.docSynchronizers)) {
      const handle = repo.handles[documentId]
      if (!handle || !handle.isReady()) continue
      docs++
      const ours = hexHeads(handle)
      for (const peerId of connected) {
        if (!docSync.hasPeer(peerId)) continue
        const shared = new Set(syncStates.get(`${documentId} ${peerId}`)?.sharedHeads ?? [])
        if (!ours.every(h => shared.has(h))) pending.push(`${handle.url} -> ${peerId}`)
      }
    }
    if (pending.length === 0) return { docs }
    if (Date.now() >= deadline) {
      throw new Error(`timeout after ${timeoutMs} ms: not yet acknowledged: ${pending.join(", ")}`)
    }
    await new Promise(r => setTimeout(r, 20))
  }
}

async function run(cmd) {
  const timeoutMs = Number(cmd.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  switch (cmd.op) {
    case "create": {
      const handle = repo.create(cmd.doc ?? {})
      return { url: handle.url }
    }
    case "find": {
      const handle = await handleFor(cmd.url, timeoutMs)
      return { doc: toJson(handle.doc()) }
    }
    case "put": {
      const path = requirePath(cmd)
      if (!("value" in cmd)) throw new Error("`value` is required")
      const handle = await handleFor(cmd.url)
      handle.change(d => {
        const [parent, key] = parentOf(d, path)
        parent[key] = cmd.value
      })
      return { heads: hexHeads(handle) }
    }
    case "delete": {
      const path = requirePath(cmd)
      const handle = await handleFor(cmd.url)
      handle.change(d => {
        const parent = valueAt(d, path.slice(0, -1))
        if (parent !== null && typeof parent === "object") delete parent[path[path.length - 1]]
      })
      return { heads: hexHeads(handle) }
    }
    case "splice": {
      const path = requirePath(cmd)
      const handle = await handleFor(cmd.url)
      handle.change(d => {
        splice(d, path, Number(cmd.index ?? 0), Number(cmd.delete ?? 0), cmd.insert ?? "")
      })
      return { heads: hexHeads(handle) }
    }
    case "read": {
      const handle = await handleFor(cmd.url)
      return { doc: toJson(handle.doc()), heads: hexHeads(handle) }
    }
    case "waitFor": {
      const path = cmd.path ?? []
      if (!Array.isArray(path)) throw new Error("`path` must be an array of keys")
      const handle = await handleFor(cmd.url, timeoutMs)
      return await waitFor(handle, path, cmd.equals, timeoutMs)
    }
    case "flush":
      return await flush(timeoutMs)
    case "peers":
      return { peers: repo.peers }
    case "errors":
      return { errors: uncaught }
    default:
      throw new Error(`unknown op ${JSON.stringify(cmd.op)}`)
  }
}

async function answer(line) {
  if (line.trim() === "") return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (e) {
    send({ id: null, ok: false, error: `invalid JSON command: ${e.message}` })
    return
  }
  const id = cmd?.id ?? null
  try {
    const result = await run(cmd ?? {})
    send({ id, ok: true, ...result })
  } catch (e) {
    console.error(`peer.mjs: ${cmd?.op} #${id} failed:`, e)
    send({ id, ok: false, error: e instanceof Error ? e.message : String(e) })
  }
}

await new Promise(resolve => {
  const timer = setTimeout(() => {
    console.error(`peer.mjs: no peer answered at ${args.url} within ${connectTimeoutMs} ms`)
    process.exit(2)
  }, connectTimeoutMs)
  repo.networkSubsystem.once("peer", ({ peerId }) => {
    clearTimeout(timer)
    console.error(`peer.mjs: ${repo.peerId} connected to ${peerId}`)
    resolve()
  })
})
process.stdout.write(`READY ${repo.peerId}\n`)

// From here on an uncaught error does not end the peer, so a test can still
// query it: the stock WebSocketClientAdapter throws from its socket's error
// handler when a reconnect is refused (e.g. `Unexpected server response:
// 401`), which would otherwise kill the process. Such errors are kept for
// the `errors` command.
const uncaught = []
process.on("uncaughtException", e => {
  console.error("peer.mjs: uncaught:", e)
  uncaught.push(e instanceof Error ? e.message : String(e))
})

// Answer commands as they come; on EOF, let the running ones answer, then exit.
const inFlight = new Set()
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on("line", line => {
  const p = answer(line)
  inFlight.add(p)
  void p.finally(() => inFlight.delete(p))
})
lines.on("close", async () => {
  await Promise.allSettled([...inFlight])
  process.exit(0)
})
