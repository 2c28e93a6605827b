// The automerge-repo sync server, set up like the official example
// (automerge-repo-sync-server): an http server whose upgrades go to a `ws`
// WebSocketServer, a Repo with NodeWSServerAdapter and NodeFSStorageAdapter,
// sharePolicy false (it answers requests and relays between the peers that
// have a document open; it announces nothing). One difference: a longer
// keep-alive (below).
//
// Usage: node server.mjs PORT DATA_DIR. Listens on 127.0.0.1 only, prints
// `LISTENING <port>` when ready, and exits on SIGTERM or SIGINT.
import http from "node:http"
import os from "node:os"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const port = Number(process.argv[2] ?? 0)
const dataDir = process.argv[3] ?? ".amrg"

const wss = new WebSocketServer({ noServer: true })
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("👍 @automerge/automerge-repo-sync-server is running")
})
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => wss.emit("connection", ws, request))
})

// The adapter pings every client each 5 s by default and drops one whose
// pong it has not seen by the next ping. On the pre-grown document automerge
// blocks the event loop for longer than that, so the server dropped every
// client at 2 editors ("connection reset by peer") and the run measured its
// keep-alive rather than its sync. The bench gives it 60 s.
const keepAliveMillis = 60_000
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss, keepAliveMillis)],
  storage: new NodeFSStorageAdapter(dataDir),
  peerId: `storage-server-${os.hostname()}`,
  sharePolicy: async () => false,
})

server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`)
})

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    setTimeout(() => process.exit(0), 2000).unref() // never hang on shutdown
    wss.close()
    server.close()
    repo.shutdown().finally(() => process.exit(0))
  })
}
