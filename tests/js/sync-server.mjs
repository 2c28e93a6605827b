// The reference automerge-repo sync server, set up like the official example
// (automerge-repo-sync-server): an http server whose upgrades go to a `ws`
// WebSocketServer, a Repo with NodeWSServerAdapter + NodeFSStorageAdapter,
// sharePolicy false (it answers requests, it announces nothing).
//
// Usage: node sync-server.mjs [--port N] [--data DIR] [--ignore-stdin]
//        (env PORT, DATA_DIR)
// --port 0 picks a free port. Listens on 127.0.0.1 only and prints exactly one
// line `LISTENING <port>` on stdout when ready. Exits on SIGTERM, SIGINT and
// when stdin closes (so a test runner that dies never leaves it running),
// unless --ignore-stdin.
import http from "node:http"
import os from "node:os"
import { parseArgs } from "node:util"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    data: { type: "string" },
    "ignore-stdin": { type: "boolean" }, // for running it by hand in the background
  },
})
const port = Number(args.port ?? process.env.PORT ?? 0)
const dataDir = args.data ?? process.env.DATA_DIR ?? ".amrg"

const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("👍 @automerge/automerge-repo-sync-server is running")
})
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => wss.emit("connection", ws, request))
})

const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dataDir),
  peerId: `storage-server-${os.hostname()}`,
  sharePolicy: async () => false,
})

// The Repo connects its network adapter a little later (after its storage
// answers); a socket accepted before then has no handlers, and the
// adapter's keep-alive would drop it at its first tick. So listen only once
// the adapter does.
function adapterListens() {
  return new Promise(resolve => {
    const check = () => (wss.listenerCount("connection") > 0 ? resolve() : setTimeout(check, 5))
    check()
  })
}
adapterListens().then(() =>
  server.listen(port, "127.0.0.1", () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`)
  }),
)

let stopping = false
async function stop(why) {
  if (stopping) return
  stopping = true
  console.error(`sync-server: stopping (${why})`)
  setTimeout(() => process.exit(0), 2000).unref() // never hang on shutdown
  wss.close()
  server.close()
  server.closeAllConnections?.()
  try {
    await repo.shutdown() // disconnects the clients and saves every document
  } catch (e) {
    console.error("sync-server: shutdown failed:", e)
  }
  process.exit(0)
}
process.on("SIGTERM", () => stop("SIGTERM"))
process.on("SIGINT", () => stop("SIGINT"))
if (!args["ignore-stdin"]) {
  process.stdin.on("end", () => stop("stdin closed"))
  process.stdin.on("error", () => stop("stdin error"))
  process.stdin.resume()
}
