// Serves web/dist as the relay will, for developing before the relay embeds
// it: index.html for / and /join, /sw.js (the service worker, no-cache),
// /assets/* with long caching, the CSP the relay will send, and /api, /sync (WebSocket) and /healthz proxied to a
// running relay.
//
//   node dev-server.mjs --relay http://127.0.0.1:3030 [--listen 127.0.0.1:8080]
//
// Prints `LISTENING http://HOST:PORT` once it accepts connections.
import http from "node:http"
import net from "node:net"
import { readFile } from "node:fs/promises"
import { dirname, join, normalize } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

export const CSP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
}

const { values: args } = parseArgs({
  options: { relay: { type: "string" }, listen: { type: "string", default: "127.0.0.1:0" }, dist: { type: "string" } },
})
if (!args.relay) {
  console.error("dev-server.mjs: --relay http://HOST:PORT is required")
  process.exit(64)
}
const relay = new URL(args.relay)
const dist = args.dist ?? join(dirname(fileURLToPath(import.meta.url)), "dist")
const [host, port] = args.listen.split(/:(?=\d+$)/)

const proxied = path => path.startsWith("/api/") || path === "/sync" || path === "/healthz" || path.startsWith("/forms/")

function proxy(req, res) {
  const upstream = http.request(
    { host: relay.hostname, port: relay.port, method: req.method, path: req.url, headers: { ...req.headers, host: relay.host } },
    answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    },
  )
  upstream.on("error", () => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" })
    res.end(JSON.stringify({ error: "the relay behind the dev server is not reachable" }))
  })
  req.pipe(upstream)
}

async function serveFile(path, res) {
  const file = path === "/" || path === "/join" || path === "/join/" ? "/index.html" : path
  const full = normalize(join(dist, file))
  if (!full.startsWith(dist) || !(file === "/index.html" || file === "/sw.js" || file.startsWith("/assets/"))) {
    res.writeHead(404, { "content-type": "text/plain" })
    return res.end("not found\n")
  }
  try {
    const body = await readFile(full)
    const ext = full.slice(full.lastIndexOf("."))
    res.writeHead(200, {
      "content-type": TYPES[ext] ?? "application/octet-stream",
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": file.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
    })
    res.end(body)
  } catch {
    res.writeHead(404, { "content-type": "text/plain" })
    res.end("not found\n")
  }
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname
  if (proxied(path)) return proxy(req, res)
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405)
    return res.end()
  }
  void serveFile(path, res)
})

// WebSocket upgrades to /sync: pipe the raw bytes both ways.
server.on("upgrade", (req, socket, head) => {
  const path = new URL(req.url ?? "/", "http://x").pathname
  if (path !== "/sync") return socket.destroy()
  const upstream = net.connect(Number(relay.port), relay.hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`]
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]
      lines.push(`${name}: ${name.toLowerCase() === "host" ? relay.host : req.rawHeaders[i + 1]}`)
    }
    upstream.write(lines.join("\r\n") + "\r\n\r\n")
    if (head?.length) upstream.write(head)
    upstream.pipe(socket)
    socket.pipe(upstream)
  })
  upstream.on("error", () => socket.destroy())
  socket.on("error", () => upstream.destroy())
})

server.listen(Number(port), host, () => {
  const { address, port } = server.address()
  console.log(`LISTENING http://${address}:${port}`)
})
