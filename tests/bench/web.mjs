#!/usr/bin/env node
// tests/bench/web.mjs: the web app's first load, time to interactive and
// typing latency, measured against a live relay in headless Chromium.
// Prints a Markdown section; with --write it replaces (or appends) the
// `## web app` section of BENCHMARKS.md.
//
//   node tests/bench/web.mjs [--write] [--runs N] [--keys K] [--interval-ms MS]
//                            [--docs 20] [--body-chars 50000] [--quiet-ms 3000]
//                            [--chromium /usr/bin/chromium] [--build] [--out FILE]
//                            [--note TEXT]… [--profile DIR] [--dist DIR] [--timeout-s 1800]
//   (or tests/bench/web.sh with the same flags)
//
// What it does, in order:
//  1. builds the release binaries if they are missing (--build: always run
//     cargo build; $CARGO_TARGET_DIR is honoured), starts
//     target/release/rapport-server on 127.0.0.1:0 with
//     a temporary data folder, and with the `rapport` CLI (temporary homes)
//     makes a workspace, --docs requirements documents from the BRD
//     template, one more whose body is --body-chars characters of Markdown
//     (written with `doc edit` and an EDITOR script), a client invite that
//     shares the --docs documents (comment access), syncs, and exports the
//     staff key;
//  2. first load: GET / and every file the page fetches (the stylesheet
//     and script in index.html, the wasm and the service worker named in
//     the script) with `Accept-Encoding: gzip`, counting the bytes of each
//     body as it comes off the socket (still compressed); then the same
//     page in a fresh browser context, counting what Chromium's network
//     layer reports as transferred (headers included);
//  3. time to interactive: a client joins from the invite link in a fresh
//     context; then --runs reloads, each measured in the page on the
//     page's own clock from navigation start to (a) all --docs titles
//     listed (a MutationObserver sees the last one) and (b) interactive: a
//     task queued at that moment has run and a frame has been produced
//     after it. Long tasks (PerformanceObserver 'longtask') in the
//     --quiet-ms after the list are reported beside it. Also --runs first
//     opens: a fresh context joins (each a new client) and the time from
//     the join form's submit to every title listed is taken;
//  4. typing: staff imports the exported key in a fresh context, opens the
//     long document, puts the cursor in the middle of its body and presses
//     --keys keys one at a time (Playwright's keyboard.press: real
//     keydown/keypress/keyup through the browser's input pipeline), one
//     every --interval-ms. Per key, in the page: from the keydown event's
//     timeStamp (when the browser took the input, so time the key waited
//     for a busy main thread counts) to the end of the first frame after
//     the editor's state and DOM hold the new character (a
//     requestAnimationFrame callback once both changed, then a
//     MessageChannel task queued from it, which runs after that frame's
//     style, layout and paint). That is the figure held against the
//     target. Beside it: keydown → the view's state holding the character
//     (the page's own work for the key), Chromium's Event Timing entries of
//     16 ms or more (the API's floor), and the same keys typed into a short
//     document (the floor: what frame alignment alone costs). At the end
//     the typed text must be in the document, the editor's kept spans equal
//     automerge's, the relay must have acknowledged every edit, and a CLI
//     replica must have the text after `rapport sync`.
//
// --profile DIR writes a CPU profile of the page while typing (Chromium's
// sampling profiler through CDP; open it in DevTools) for each document and
// prints the functions with the most self and total time. --dist DIR serves
// another build of the app (e.g. one made with RAPPORT_NO_MINIFY=1 in a
// copy of web/, for readable profiles) through web/dev-server.mjs in front
// of the relay; the first-load figures are then not the relay's.
// --note TEXT (repeatable) adds a line to the section.
//
// Everything listens on 127.0.0.1 only; every wait has a bound; the relay
// and the browser are stopped and the temporary folder (relay data, CLI
// homes, the browser's profiles) removed at the end, on failure too.
// Needs web/node_modules (cd web && npm ci) for playwright-core and
// Chromium at /usr/bin/chromium; no browser is ever downloaded.

import { spawn, spawnSync, execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs"
import http from "node:http"
import { createRequire } from "node:module"
import os from "node:os"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { gunzipSync } from "node:zlib"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..", "..")
const shellWord = w => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)
const commandLine = [process.env.CARGO_TARGET_DIR ? `CARGO_TARGET_DIR=${shellWord(process.env.CARGO_TARGET_DIR)}` : null, "tests/bench/web.mjs", ...process.argv.slice(2).map(shellWord)]
  .filter(Boolean)
  .join(" ")
/** `text` as a Markdown code span, whatever backticks it holds. */
const code = text => (text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``)

const { values: args } = parseArgs({
  options: {
    write: { type: "boolean", default: false },
    out: { type: "string", default: join(root, "BENCHMARKS.md") },
    runs: { type: "string", default: "7" },
    keys: { type: "string", default: "300" },
    "interval-ms": { type: "string", default: "100" },
    docs: { type: "string", default: "20" },
    "body-chars": { type: "string", default: "50000" },
    "quiet-ms": { type: "string", default: "3000" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    build: { type: "boolean", default: false },
    "timeout-s": { type: "string", default: "1800" },
    profile: { type: "string" },
    dist: { type: "string" },
    note: { type: "string", multiple: true },
    help: { type: "boolean", short: "h", default: false },
  },
})
if (args.help) {
  const text = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n")
  console.log(text.slice(1, text.findIndex(l => l.startsWith("import"))).map(l => l.replace(/^\/\/ ?/, "")).join("\n"))
  process.exit(0)
}
const RUNS = positive("runs")
const KEYS = positive("keys")
const INTERVAL_MS = positive("interval-ms")
const DOCS = positive("docs")
const BODY_CHARS = positive("body-chars")
const QUIET_MS = positive("quiet-ms")
const TIMEOUT_S = positive("timeout-s")

function positive(name) {
  const n = Number(args[name])
  if (!Number.isInteger(n) || n < 1) {
    console.error(`web.mjs: --${name} takes a whole number of 1 or more, not ${JSON.stringify(args[name])}`)
    process.exit(2)
  }
  return n
}

// The issue's targets.
const TARGET_LOAD_MB = 1.5
const TARGET_TTI_MS = 2000
const TARGET_KEY_MS = 16

const log = (...a) => console.error("[web-bench]", ...a)

// ---------------------------------------------------------------- clean-up

const tmp = mkdtempSync(join(os.tmpdir(), "rapport-bench-web-"))
// Playwright makes the browser's profile folders under os.tmpdir(): keep them in ours.
const browserTmp = join(tmp, "browser-tmp")
mkdirSync(browserTmp)
process.env.TMPDIR = browserTmp

let relay = null
let devServer = null
let browser = null
/** Where the browser opens the app: the relay, or web/dev-server.mjs in front of it with --dist. */
let appBase = null
let cleaning = null
/** Stops the browser, the dev server and the relay and removes the temporary folder; once, however often called. */
function cleanup() {
  cleaning ??= stopAll()
  return cleaning
}
async function stopAll() {
  if (browser) {
    await Promise.race([browser.close().catch(() => undefined), sleep(10000)])
  }
  if (devServer && devServer.exitCode === null && devServer.signalCode === null) devServer.kill("SIGTERM")
  if (relay && relay.exitCode === null && relay.signalCode === null) {
    relay.kill("SIGTERM")
    const stopped = await Promise.race([new Promise(r => relay.once("exit", () => r(true))), sleep(10000).then(() => false)])
    if (!stopped) relay.kill("SIGKILL")
  }
  for (let i = 0; i < 5; i++) {
    try {
      rmSync(tmp, { recursive: true, force: true, maxRetries: 3 })
      break
    } catch {
      await sleep(500) // a child still writing into it
    }
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    log(`${signal}: stopping`)
    void cleanup().then(() => process.exit(130))
  })
}
/** Bounds the whole run after the build (which has its own bound). */
function startWatchdog() {
  setTimeout(() => {
    log(`gave up after ${TIMEOUT_S} s (--timeout-s)`)
    void cleanup().then(() => process.exit(1))
  }, TIMEOUT_S * 1000).unref()
}

function sleep(ms) {
  return new Promise(r => setTimeout(r, ms))
}

/** `promise`, or an error naming `what` after `ms`. */
function bounded(promise, ms, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms)
    }),
  ])
}

// ---------------------------------------------------------------- binaries, relay, CLI

const targetDir = resolve(root, process.env.CARGO_TARGET_DIR || "target")
const relayBin = join(targetDir, "release", "rapport-server")
const cliBin = join(targetDir, "release", "rapport")

function build() {
  if (!args.build && existsSync(relayBin) && existsSync(cliBin)) return
  log("cargo build --release -p rapport-server -p rapport")
  const r = spawnSync("cargo", ["build", "--release", "-p", "rapport-server", "-p", "rapport"], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 3600 * 1000,
  })
  if (r.status !== 0) throw new Error(`cargo build failed (${r.error?.message ?? `exit ${r.status}`})`)
}

async function startRelay() {
  const data = join(tmp, "relay")
  relay = spawn(relayBin, ["--listen", "127.0.0.1:0", "--data", data], {
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info" },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let seen = ""
  const address = new Promise((resolve, reject) => {
    const onData = chunk => {
      seen += chunk.toString().replace(/\x1b\[[0-9;]*m/g, "")
      if (seen.length > 100000) seen = seen.slice(-50000)
      const m = seen.match(/listening.*?addr=(127\.0\.0\.1:(\d+))/)
      if (m) resolve(Number(m[2]))
    }
    relay.stdout.on("data", onData)
    relay.stderr.on("data", onData)
    relay.once("exit", code => reject(new Error(`the relay exited (${code}) before listening: ${seen.slice(-2000)}`)))
  })
  const port = await bounded(address, 20000, "the relay's listening line")
  const base = `http://127.0.0.1:${port}`
  await bounded(
    (async () => {
      for (;;) {
        const r = await get(`${base}/healthz`).catch(() => null)
        if (r?.status === 200) return
        await sleep(100)
      }
    })(),
    20000,
    "GET /healthz",
  )
  return base
}

/** --dist DIR: web/dev-server.mjs serves DIR in front of the relay (for profiling a RAPPORT_NO_MINIFY=1 build). */
async function startDevServer(relayBase) {
  devServer = spawn(process.execPath, [join(root, "web", "dev-server.mjs"), "--relay", relayBase, "--listen", "127.0.0.1:0", "--dist", args.dist], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  let seen = ""
  const url = new Promise((resolve, reject) => {
    devServer.stdout.on("data", chunk => {
      seen += chunk.toString()
      const m = seen.match(/LISTENING (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) resolve(m[1])
    })
    devServer.once("exit", code => reject(new Error(`dev-server.mjs exited (${code})`)))
  })
  const at = await bounded(url, 20000, "dev-server.mjs listening")
  log(`serving ${args.dist} at ${at} (dev-server.mjs; the first-load figures are not the relay's)`)
  return at
}

/** Runs the CLI with --json; returns the parsed answer. */
function cli(home, argv, env = {}) {
  const r = spawnSync(cliBin, ["--home", home, "--json", ...argv], {
    env: { ...process.env, NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: 300 * 1000,
    maxBuffer: 64 * 1024 * 1024,
  })
  if (r.status !== 0) throw new Error(`rapport ${argv.join(" ")}: ${r.error?.message ?? `exit ${r.status}`}\n${r.stderr}`)
  return JSON.parse(r.stdout)
}

/** A deterministic requirements body of exactly `chars` characters of Markdown, under the BRD headings. */
function requirementsBody(chars) {
  const words = (
    "the portal lets buyers track each order invoice and delivery online with one sign in the status of every shipment " +
    "is shown as it changes and a buyer may download invoices as PDF files or ask a question about any line staff answer " +
    "within one working day reports list open orders by customer region and due date the system must keep an audit trail " +
    "of every change to an order and must work on phones tablets and laptops with the same layout payments use the existing " +
    "provider and refunds are approved by finance before they are sent"
  ).split(" ")
  let seed = 42
  const rand = n => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  const sentence = () => {
    const n = 8 + rand(14)
    const s = Array.from({ length: n }, () => words[rand(words.length)]).join(" ")
    return s[0].toUpperCase() + s.slice(1) + "."
  }
  const sections = ["Scope", "Business drivers", "Financial details", "Timeline and deadlines"]
  const perSection = Math.ceil(chars / sections.length)
  let out = ""
  for (const heading of sections) {
    out += `## ${heading}\n\n`
    const end = Math.min(chars, out.length + perSection)
    let item = 0
    while (out.length < end) {
      if (item % 6 === 5) {
        // a short list now and then
        out += Array.from({ length: 3 }, () => `- ${sentence()}`).join("\n") + "\n\n"
      } else {
        out += Array.from({ length: 3 + rand(4) }, sentence).join(" ") + "\n\n"
      }
      item++
    }
  }
  out = out.slice(0, chars - 1)
  return out.replace(/\s+$/, "").padEnd(chars - 1, ".") + "\n"
}

async function setUp(base) {
  const staffHome = join(tmp, "staff")
  cli(staffHome, ["init", "--name", "Sam Staff"])
  const ws = cli(staffHome, ["workspace", "create", "Bench workspace", "--relay", base]).id
  const topics = ["Order tracking", "Invoices", "Returns", "Deliveries", "Customer portal", "Reports", "Payments", "Onboarding", "Support desk", "Catalogue"]
  const shared = []
  for (let i = 1; i <= DOCS; i++) {
    const title = `Requirements ${String(i).padStart(2, "0")}: ${topics[(i - 1) % topics.length]}`
    shared.push({ id: cli(staffHome, ["doc", "new", title, "--template", "brd"]).id, title })
  }
  const bigTitle = `Long requirements (${BODY_CHARS.toLocaleString("en-US")} characters)`
  const big = cli(staffHome, ["doc", "new", bigTitle, "--template", "brd"]).id
  const bodyFile = join(tmp, "body.md")
  writeFileSync(bodyFile, requirementsBody(BODY_CHARS))
  const editor = join(tmp, "editor.sh")
  writeFileSync(editor, '#!/bin/sh\ncat "$RAPPORT_BENCH_BODY" > "$1"\n')
  chmodSync(editor, 0o755)
  cli(staffHome, ["doc", "edit", big], { EDITOR: editor, VISUAL: editor, RAPPORT_BENCH_BODY: bodyFile })
  const bodyLength = cli(staffHome, ["doc", "show", big]).body.length
  // The documents join the workspace on the relay when they are synced; then they can be shared.
  const synced = cli(staffHome, ["sync"])
  if (synced.refused?.length) throw new Error(`sync refused ${JSON.stringify(synced.refused)}`)
  const inviteArgs = ["invite", "create", "--role", "client", "--uses", String(RUNS), "--expires", "12h"]
  for (const d of shared) inviteArgs.push("--doc", d.id, "--access", "comment")
  const invite = cli(staffHome, inviteArgs).link
  const keyFile = join(tmp, "staff-key.json")
  cli(staffHome, ["key", "export", keyFile])
  return { staffHome, ws, shared, big, bigTitle, bodyLength, invite, staffKey: readFileSync(keyFile, "utf8") }
}

// ---------------------------------------------------------------- first load over HTTP

/** GET `url` with Accept-Encoding: gzip; the body's bytes as they came off the socket. */
function get(url, headers = {}) {
  return bounded(
    new Promise((resolve, reject) => {
      const req = http.get(url, { headers: { "accept-encoding": "gzip", ...headers } }, res => {
        const chunks = []
        res.on("data", c => chunks.push(c))
        res.on("end", () => {
          const wire = Buffer.concat(chunks)
          const encoding = res.headers["content-encoding"] ?? "identity"
          const body = encoding === "gzip" ? gunzipSync(wire) : wire
          // Status line and headers as sent: "HTTP/1.1 200 OK\r\n" + "name: value\r\n"… + "\r\n".
          let headerBytes = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}\r\n`.length + 2
          for (let i = 0; i < res.rawHeaders.length; i += 2) headerBytes += res.rawHeaders[i].length + 2 + Buffer.byteLength(res.rawHeaders[i + 1]) + 2
          resolve({ status: res.statusCode, type: res.headers["content-type"] ?? "", encoding, wire: wire.length, size: body.length, headerBytes, body })
        })
        res.on("error", reject)
      })
      req.on("error", reject)
    }),
    20000,
    `GET ${url}`,
  )
}

async function firstLoad(base) {
  const files = []
  const index = await get(`${base}/`)
  if (index.status !== 200) throw new Error(`GET / answered ${index.status}`)
  files.push({ path: "/", ...index })
  const html = index.body.toString("utf8")
  // Which build of the app the relay embeds: web/dist as in the working tree, or as some commit has it.
  const script = html.match(/<script[^>]*src="([^"]+)"/)?.[1] ?? "?"
  const working = readFileSync(join(args.dist ?? join(root, "web", "dist"), "index.html"), "utf8") === html
  let committed = null
  const git = argv => execFileSync("git", ["-C", root, ...argv], { encoding: "utf8", timeout: 20000, stdio: ["ignore", "pipe", "ignore"], maxBuffer: 16 * 1024 * 1024 })
  try {
    for (const c of git(["log", "-n", "200", "--format=%h", "--", "web/dist/index.html"]).split("\n").filter(Boolean)) {
      if (git(["show", `${c}:web/dist/index.html`]) === html) {
        committed = c
        break
      }
    }
  } catch {
    // not a git checkout
  }
  const staleEmbed = !working && !committed
  const fromHtml = [...html.matchAll(/\s(?:href|src)="(\/[^"]*)"/g)].map(m => m[1])
  const seen = new Set(["/"])
  const queue = [...fromHtml]
  while (queue.length) {
    const path = queue.shift()
    if (seen.has(path)) continue
    seen.add(path)
    const r = await get(`${base}${path}`)
    if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}`)
    files.push({ path, ...r })
    if (/javascript/.test(r.type)) {
      // Files the script fetches itself: string literals naming /assets/… or /sw.js (the LEGAL.txt is only named in a comment).
      const js = r.body.toString("utf8")
      for (const m of js.matchAll(/["'`](\/(?:assets\/[A-Za-z0-9._-]+\.(?:wasm|js|css)|sw\.js))["'`]/g)) queue.push(m[1])
    }
  }
  const total = files.reduce((s, f) => s + f.wire, 0)
  const headers = files.reduce((s, f) => s + f.headerBytes, 0)
  return { files: files.map(({ body, ...f }) => f), total, headers, staleEmbed, script, working, committed }
}

/** The same first visit in a fresh browser context: what Chromium's network layer counted. */
async function browserFirstVisit(base) {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    const cdp = await context.newCDPSession(page)
    await cdp.send("Network.enable")
    const requests = new Map()
    cdp.on("Network.responseReceived", e => {
      const r = requests.get(e.requestId) ?? {}
      r.url = e.response.url
      r.fromCache = e.response.fromDiskCache || e.response.fromServiceWorker || e.response.fromPrefetchCache
      requests.set(e.requestId, r)
    })
    cdp.on("Network.loadingFinished", e => {
      const r = requests.get(e.requestId) ?? {}
      r.bytes = e.encodedDataLength
      requests.set(e.requestId, r)
    })
    await page.goto(`${base}/`, { timeout: 30000 })
    // The welcome page is up and the service worker (which keeps the app) is active.
    await page.waitForSelector('input[aria-label="Key file"]', { timeout: 30000 })
    await page.evaluate(() => Promise.race([navigator.serviceWorker.ready, new Promise(r => setTimeout(r, 10000))]).then(() => undefined))
    await sleep(500)
    const done = [...requests.values()].filter(r => r.url && typeof r.bytes === "number")
    return {
      requests: done.map(r => ({ path: new URL(r.url).pathname, bytes: r.bytes, fromCache: !!r.fromCache })),
      total: done.reduce((s, r) => s + r.bytes, 0),
    }
  } finally {
    await context.close()
  }
}

// ---------------------------------------------------------------- browser contexts

async function newContext(initScripts = []) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  // The app's test hooks (window.rapport), as tests/driver.mjs turns them on; they change no behaviour.
  await context.addInitScript(() => {
    try {
      localStorage.setItem("rapport-test", "1")
    } catch {
      // no storage on an error page
    }
  })
  for (const [fn, arg] of initScripts) await context.addInitScript(fn, arg)
  const page = await context.newPage()
  const errors = []
  page.on("pageerror", e => errors.push(String(e)))
  return { context, page, errors }
}

/**
 * Runs in every document of the client contexts: notes, on the page's own
 * clock, when `want` document titles are listed and when a task queued at
 * that moment has run and a frame has been made after it; keeps long tasks.
 */
function ttiProbe(want) {
  const mark = { listed: null, interactive: null, listedEpoch: null, long: [] }
  window.__bench = mark
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) mark.long.push([e.startTime, e.duration])
    }).observe({ type: "longtask", buffered: true })
  } catch {
    // no long task timing
  }
  const observer = new MutationObserver(() => {
    if (mark.listed !== null) return
    if (document.querySelectorAll(".card [data-doc-title]").length < want) return
    mark.listed = performance.now()
    mark.listedEpoch = performance.timeOrigin + mark.listed
    observer.disconnect()
    const channel = new MessageChannel()
    channel.port1.onmessage = () => {
      requestAnimationFrame(() => {
        const after = new MessageChannel()
        after.port1.onmessage = () => {
          mark.interactive = performance.now()
        }
        after.port2.postMessage(0)
      })
    }
    channel.port2.postMessage(0)
  })
  observer.observe(document, { childList: true, subtree: true })
  // The join form's submit, for the first open (the page after it is a new document).
  document.addEventListener(
    "submit",
    () => {
      try {
        sessionStorage.setItem("bench-submit", String(performance.timeOrigin + performance.now()))
      } catch {
        // no storage
      }
    },
    true,
  )
}

async function titlesShown(page) {
  return page.evaluate(() => [...document.querySelectorAll(".card [data-doc-title]")].map(el => el.textContent.trim()))
}

function sameTitles(shown, expected) {
  return shown.length === expected.length && [...shown].sort().join("\n") === [...expected].sort().join("\n")
}

async function joinFromLink(page, link, name) {
  const fragment = link.slice(link.indexOf("#"))
  const base = appBase
  await page.goto(`${base}/join${fragment}`, { timeout: 30000 })
  await page.waitForSelector("form.join-card input[name=name]", { timeout: 30000 })
  await page.fill("form.join-card input[name=name]", name)
  await page.click("form.join-card button[type=submit]")
}

async function timeToInteractive(setup) {
  const expected = setup.shared.map(d => d.title)
  const runs = []
  const fresh = []
  // First opens: each a fresh context (a new browser profile's storage) joining as a new client.
  for (let i = 0; i < RUNS; i++) {
    const { context, page, errors } = await newContext([[ttiProbe, DOCS]])
    try {
      await joinFromLink(page, setup.invite, `Carla Client ${i + 1}`)
      await page.waitForFunction(() => window.__bench?.interactive != null, null, { timeout: 60000, polling: 50 })
      const r = await page.evaluate(() => ({ submit: Number(sessionStorage.getItem("bench-submit")), listedEpoch: window.__bench.listedEpoch, listed: window.__bench.listed, interactive: window.__bench.interactive }))
      const shown = await titlesShown(page)
      if (!sameTitles(shown, expected)) throw new Error(`first open ${i + 1}: the list shows ${JSON.stringify(shown)}`)
      if (errors.length) throw new Error(`first open ${i + 1}: page errors ${errors.join("; ")}`)
      fresh.push({ listed: r.listedEpoch - r.submit, interactive: r.listedEpoch - r.submit + (r.interactive - r.listed) })
      log(`first open ${i + 1}: listed ${fmtMs(fresh.at(-1).listed)} after the join form's submit`)
      if (i < RUNS - 1) await context.close()
      else {
        // The last one stays for the reloads.
        for (let j = 0; j < RUNS; j++) {
          await page.reload({ waitUntil: "commit", timeout: 30000 })
          await page.waitForFunction(() => window.__bench?.interactive != null, null, { timeout: 30000, polling: 50 })
          await sleep(QUIET_MS)
          const m = await page.evaluate(() => window.__bench)
          const shownNow = await titlesShown(page)
          if (!sameTitles(shownNow, expected)) throw new Error(`reload ${j + 1}: the list shows ${JSON.stringify(shownNow)}`)
          const after = m.long.filter(([start, d]) => start + d > m.listed && start < m.listed + QUIET_MS)
          const before = m.long.filter(([start]) => start < m.listed)
          runs.push({
            listed: m.listed,
            interactive: m.interactive,
            longBefore: before.reduce((s, [, d]) => s + d, 0),
            longAfterCount: after.length,
            longAfterTotal: after.reduce((s, [, d]) => s + d, 0),
            longAfterMax: after.reduce((s, [, d]) => Math.max(s, d), 0),
          })
          log(`reload ${j + 1}: listed ${fmtMs(m.listed)}, interactive ${fmtMs(m.interactive)}, long tasks after: ${after.length}`)
        }
        if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`)
        await context.close()
      }
    } catch (error) {
      await context.close().catch(() => undefined)
      throw error
    }
  }
  return { runs, fresh }
}

// ---------------------------------------------------------------- typing

/** Installed in the staff page once the document is open: times each key press. */
function keyProbe() {
  const view = window.rapport.view.editor.view
  const keys = []
  window.__keys = keys
  let current = null
  let mutated = false
  // When the state holding the key's character is in the view (the binding's automerge change included).
  const updateState = view.updateState.bind(view)
  view.updateState = state => {
    updateState(state)
    if (current && current.applied == null && state.doc !== current.docBefore) current.applied = performance.now()
  }
  new MutationObserver(() => {
    mutated = true
  }).observe(view.dom, { childList: true, subtree: true, characterData: true })
  const waitFrame = rec => {
    requestAnimationFrame(() => {
      if (!(mutated && rec.applied != null)) {
        if (performance.now() - rec.start > 5000) {
          rec.error = "the editor did not change within 5 s"
          rec.end = performance.now()
          return
        }
        return waitFrame(rec)
      }
      rec.frame = performance.now()
      const channel = new MessageChannel()
      channel.port1.onmessage = () => {
        rec.end = performance.now()
        rec.docBefore = null
        current = null
      }
      channel.port2.postMessage(0)
    })
  }
  window.addEventListener(
    "keydown",
    e => {
      const rec = { key: e.key, stamp: e.timeStamp, start: performance.now(), docBefore: view.state.doc, applied: null, frame: null, end: null, error: null }
      keys.push(rec)
      current = rec
      mutated = false
      waitFrame(rec)
    },
    true,
  )
  window.__keyDone = (i, ms) =>
    new Promise(resolve => {
      const t0 = performance.now()
      const poll = () => {
        const rec = keys[i]
        if (rec?.end != null) return resolve({ key: rec.key, latency: rec.end - rec.stamp, handlerDelay: rec.start - rec.stamp, applied: rec.applied - rec.stamp, toFrame: rec.frame - rec.stamp, error: rec.error })
        if (performance.now() - t0 > ms) return resolve({ error: `key ${i} not done within ${ms} ms` })
        setTimeout(poll, 2)
      }
      poll()
    })
  // Chromium's own view: Event Timing entries (16 ms is the API's floor) and long tasks.
  window.__eventTiming = []
  window.__typingLong = []
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__eventTiming.push({ name: e.name, duration: e.duration, interactionId: e.interactionId, start: e.startTime })
  }).observe({ type: "event", durationThreshold: 16 })
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__typingLong.push(e.duration)
  }).observe({ type: "longtask" })
  return true
}

/**
 * Staff types into document `doc` (titled `title`, whose body holds about
 * `chars` characters); `profile` names a file for a CPU profile of the page
 * while typing (Chromium's sampling profiler, 100 µs), or null.
 */
async function typing(setup, { doc, title, chars, profile }) {
  const { context, page, errors } = await newContext()
  try {
    await page.goto(`${appBase}/`, { timeout: 30000 })
    const input = page.locator('input[type=file][aria-label="Key file"]')
    await input.setInputFiles({ name: "key.json", mimeType: "application/json", buffer: Buffer.from(setup.staffKey) }, { timeout: 30000 })
    const publicKey = JSON.parse(setup.staffKey).public_key
    await page.waitForFunction(pk => window.rapport?.app?.identity?.publicKey === pk, publicKey, { timeout: 30000, polling: 100 })
    await page.waitForFunction(t => [...document.querySelectorAll(".card [data-doc-title]")].some(el => el.textContent.trim() === t), title, { timeout: 60000, polling: 100 })
    const opening = performance.now()
    await page.evaluate(route => {
      location.hash = route
    }, `#/w/${setup.ws}/d/${doc}`)
    await page.waitForFunction(
      min => {
        const r = window.rapport
        const editor = r?.view?.editor
        if (!editor || !editor.view.editable) return false
        const handle = r.app.workspace.loaded.get(location.hash.split("/")[4])?.handle
        return !!handle && r.helpers.bodyText(handle.doc()).length >= min
      },
      Math.floor(chars * 0.95),
      { timeout: 60000, polling: "raf" },
    )
    const openMs = performance.now() - opening
    // Let the opening settle (the list's sync, the editor's first layout) before timing keys.
    await sleep(2000)
    const bodyBefore = await page.evaluate(() => {
      const r = window.rapport
      return r.helpers.bodyText(r.app.workspace.loaded.get(location.hash.split("/")[4]).handle.doc()).length
    })
    // The cursor in the middle of the body, at the end of a word.
    await page.evaluate(at => window.rapport.view.editor.placeCursor(at), Math.floor(bodyBefore / 2))
    await page.evaluate(keyProbe)
    const phrase = " and buyers see it at once"
    const typed = Array.from({ length: KEYS }, (_, i) => phrase[i % phrase.length]).join("")
    const samples = []
    let cdp = null
    if (profile) {
      cdp = await context.newCDPSession(page)
      await cdp.send("Profiler.enable")
      await cdp.send("Profiler.setSamplingInterval", { interval: 100 })
      await cdp.send("Profiler.start")
    }
    const started = performance.now()
    for (let i = 0; i < KEYS; i++) {
      const slot = started + i * INTERVAL_MS
      const wait = slot - performance.now()
      if (wait > 0) await sleep(wait)
      const before = performance.now()
      await page.keyboard.press(typed[i] === " " ? "Space" : typed[i])
      const r = await page.evaluate(([i, ms]) => window.__keyDone(i, ms), [i, 10000])
      if (r.error) throw new Error(`key ${i + 1} (${JSON.stringify(typed[i])}): ${r.error}`)
      if (r.key !== typed[i]) throw new Error(`key ${i + 1}: the page saw ${JSON.stringify(r.key)}, not ${JSON.stringify(typed[i])}`)
      r.roundTrip = performance.now() - before
      samples.push(r)
    }
    const typingSeconds = (performance.now() - started) / 1000
    if (cdp) {
      const { profile: cpu } = await cdp.send("Profiler.stop")
      writeFileSync(profile, JSON.stringify(cpu))
      log(`CPU profile of the page while typing: ${profile}`)
      summarizeProfile(cpu)
    }
    const extra = await page.evaluate(() => ({ events: window.__eventTiming, long: window.__typingLong }))
    // The typed text is in the document, and the relay acknowledged it.
    const after = await page.evaluate(() => {
      const r = window.rapport
      return r.helpers.bodyText(r.app.workspace.loaded.get(location.hash.split("/")[4]).handle.doc())
    })
    if (!after.includes(typed.trim())) throw new Error("the typed text is not in the document")
    // The editor binding's kept spans (web/src/editor/spans.ts) are automerge's own.
    const agree = await page.evaluate(() => {
      const r = window.rapport
      return r.helpers.spansAgree ? r.helpers.spansAgree(r.app.workspace.loaded.get(location.hash.split("/")[4]).handle.doc()) : null
    })
    if (agree === false) throw new Error("the editor's kept spans differ from automerge's")
    await page.waitForFunction(() => document.querySelector(".status")?.getAttribute("data-waiting") === "0" && document.querySelector(".status")?.getAttribute("data-status") === "online", null, { timeout: 60000, polling: 200 })
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`)
    return { samples, extra, openMs, bodyBefore, bodyAfter: after.length, typed, typingSeconds, doc }
  } finally {
    await context.close().catch(() => undefined)
  }
}

/** Prints the functions with the most self time in a CPU profile, and the time under a few of the app's own. */
function summarizeProfile(cpu) {
  const byId = new Map(cpu.nodes.map(n => [n.id, n]))
  const self = new Map()
  const dt = new Map()
  for (let i = 0; i < cpu.samples.length; i++) dt.set(i, (cpu.timeDeltas[i + 1] ?? 0) / 1000)
  const perNode = new Map()
  cpu.samples.forEach((id, i) => perNode.set(id, (perNode.get(id) ?? 0) + (dt.get(i) ?? 0)))
  const name = n => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber + 1}:${n.callFrame.columnNumber + 1}`
  let total = 0
  for (const [id, ms] of perNode) {
    const key = name(byId.get(id))
    self.set(key, (self.get(key) ?? 0) + ms)
    total += ms
  }
  // Total (inclusive) time per function: a sample counts once per function on its stack.
  const parent = new Map()
  for (const n of cpu.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map()
  for (const [id, ms] of perNode) {
    const seen = new Set()
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const key = name(byId.get(at))
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + ms)
    }
  }
  const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => `  ${ms.toFixed(1).padStart(9)} ms  ${((ms / total) * 100).toFixed(1).padStart(5)} %  ${k}`).join("\n")
  log(`profile: ${total.toFixed(0)} ms sampled; top self time:\n${top(self, 30)}`)
  log(`top total time:\n${top(inclusive, 40)}`)
}

// ---------------------------------------------------------------- figures

function quantile(sorted, q) {
  if (!sorted.length) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}
function stats(values) {
  const s = [...values].sort((a, b) => a - b)
  return { n: s.length, min: s[0], median: quantile(s, 0.5), p95: quantile(s, 0.95), p99: quantile(s, 0.99), max: s.at(-1), mean: s.reduce((a, b) => a + b, 0) / s.length }
}
function fmtMs(ms) {
  if (!Number.isFinite(ms)) return "–"
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`
  return `${ms.toFixed(1)} ms`
}
const fmtBytes = b => `${b.toLocaleString("en-US")} B`
const fmtKB = b => `${(b / 1000).toFixed(1)} kB`
const fmtMB = b => `${(b / 1e6).toFixed(3)} MB`

function verdict(measured, target, unit) {
  if (measured <= target) return `met (${((1 - measured / target) * 100).toFixed(0)} % under)`
  return `**missed** by ${unit(measured - target)} (${((measured / target - 1) * 100).toFixed(0)} % over)`
}

function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8")
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() ?? "unknown CPU"
  const mem = (os.totalmem() / 2 ** 30).toFixed(2)
  let chromium = "unknown"
  try {
    chromium = execFileSync(args.chromium, ["--version"], { encoding: "utf8", timeout: 20000, stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    // keep unknown
  }
  return { cores: os.cpus().length, model, mem, chromium, kernel: `${os.type()} ${os.release()} ${os.arch()}` }
}

function loadavg() {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
}

function markdown(r) {
  const L = []
  const loadMB = r.load.total / 1e6
  const tti = stats(r.tti.runs.map(x => x.interactive))
  const listed = stats(r.tti.runs.map(x => x.listed))
  const freshL = stats(r.tti.fresh.map(x => x.listed))
  const freshI = stats(r.tti.fresh.map(x => x.interactive))
  const keys = stats(r.typing.samples.map(s => s.latency))
  const toFrame = stats(r.typing.samples.map(s => s.toFrame))
  const delay = stats(r.typing.samples.map(s => s.handlerDelay))
  const applied = stats(r.typing.samples.map(s => s.applied))
  const floorApplied = stats(r.control.samples.map(s => s.applied))
  const trip = stats(r.typing.samples.map(s => s.roundTrip))
  const floor = stats(r.control.samples.map(s => s.latency))
  const floorFrame = stats(r.control.samples.map(s => s.toFrame))
  const over = r.typing.samples.filter(s => s.latency > TARGET_KEY_MS).length
  const floorOver = r.control.samples.filter(s => s.latency > TARGET_KEY_MS).length
  /** Event Timing per key (the longest entry of each interaction); a key with no entry was under 16 ms. */
  const eventTiming = run => {
    const byInteraction = new Map()
    for (const e of run.extra.events) {
      if (!e.interactionId) continue
      byInteraction.set(e.interactionId, Math.max(byInteraction.get(e.interactionId) ?? 0, e.duration))
    }
    const values = [...byInteraction.values()]
    while (values.length < run.samples.length) values.push(0)
    const st = stats(values)
    const show = v => (v === 0 ? "< 16 ms" : fmtMs(v))
    return { count: byInteraction.size, row: `${show(st.median)} | ${show(st.p95)} | ${show(st.p99)} | ${show(st.max)} | –` }
  }
  const et = eventTiming(r.typing)
  const etFloor = eventTiming(r.control)
  const longTyping = r.typing.extra.long
  L.push("## web app", "")
  L.push(
    "Written by `tests/bench/web.mjs --write` (this section only; `tests/bench/compare.sh` keeps it when it rewrites the rest). " +
      "The relay's release build serves the app it embeds (web/dist) on 127.0.0.1; headless Chromium drives it through playwright-core; " +
      "see `docs/benchmarks.md` (web app) for what each figure means and where the targets stand.",
    "",
  )
  L.push(`- date: ${r.date}`)
  L.push(`- machine: ${r.machine.cores} cores, ${r.machine.model}, ${r.machine.mem} GiB, ${r.machine.kernel}; load average (1, 5, 15 min) before: ${r.loadBefore}; after: ${r.loadAfter}`)
  L.push(`- browser: ${r.machine.chromium}, headless, --disable-gpu`)
  L.push(`- command: ${code(commandLine)}`)
  L.push(`- sizes: ${DOCS} shared documents (BRD template), ${RUNS} runs, ${KEYS} keys one every ${INTERVAL_MS} ms into a body of ${r.setup.bodyLength.toLocaleString("en-US")} characters of Markdown (written with \`rapport doc edit\`; the page reads ${r.typing.bodyBefore.toLocaleString("en-US")} back as Markdown lines)`)
  if (args.dist) L.push(`- **not the relay's app**: --dist ${args.dist} served by web/dev-server.mjs in front of the relay`)
  const appIs = [r.load.committed ? `web/dist as commit ${r.load.committed} made it` : null, r.load.working ? "as in the working tree" : null].filter(Boolean).join(", ")
  L.push(`- app: the relay's embedded web/dist (script \`${r.load.script}\`: ${appIs || "unknown"}); relay and CLI: \`${relayBin.startsWith(root) ? relative(root, relayBin) : relayBin}\`; the checkout was at commit ${r.commit} when the run started`)
  for (const note of args.note ?? []) L.push(`- ${note}`)
  if (r.load.staleEmbed) L.push("- **warning**: the relay served an app that is neither web/dist's nor any recent commit's (a relay built from another web build)")
  L.push("")
  L.push("| target | measured | verdict |", "|---|---|---|")
  L.push(`| first load ≤ ${TARGET_LOAD_MB} MB compressed | ${fmtMB(r.load.total)} (${(r.load.total / 2 ** 20).toFixed(3)} MiB) | ${verdict(loadMB, TARGET_LOAD_MB, x => `${x.toFixed(3)} MB`)} |`)
  L.push(`| time to interactive, ${DOCS} shared documents, < ${TARGET_TTI_MS / 1000} s | median ${fmtMs(tti.median)}, max ${fmtMs(tti.max)} (reload) | ${verdict(tti.max, TARGET_TTI_MS, fmtMs)} (max of ${tti.n}) |`)
  L.push(`| typing, ${r.setup.bodyLength.toLocaleString("en-US")} characters, < ${TARGET_KEY_MS} ms a key | median ${fmtMs(keys.median)}, p95 ${fmtMs(keys.p95)}, max ${fmtMs(keys.max)} | median ${verdict(keys.median, TARGET_KEY_MS, fmtMs)}; p95 ${verdict(keys.p95, TARGET_KEY_MS, fmtMs)}; ${over} of ${keys.n} keys over ${TARGET_KEY_MS} ms |`)
  L.push("")
  L.push("### first load", "")
  L.push("GET with `Accept-Encoding: gzip`; on the wire = the body's bytes as received (headers apart).", "")
  L.push("| file | type | encoding | size | on the wire |", "|---|---|---|---|---|")
  for (const f of r.load.files) L.push(`| \`${f.path}\` | ${f.type.split(";")[0]} | ${f.encoding} | ${fmtBytes(f.size)} | ${fmtBytes(f.wire)} |`)
  L.push(`| **total** | | | ${fmtBytes(r.load.files.reduce((s, f) => s + f.size, 0))} | **${fmtBytes(r.load.total)} = ${fmtMB(r.load.total)}** |`)
  L.push("")
  L.push(
    `Response headers: ${fmtBytes(r.load.headers)} more. The same first visit in a fresh Chromium context (Accept-Encoding gzip, deflate, br, zstd; the relay answers gzip): ` +
      `${r.visit.requests.length} requests, ${fmtBytes(r.visit.total)} transferred with headers (${r.visit.requests.map(q => `\`${q.path}\` ${fmtKB(q.bytes)}${q.fromCache ? " (cache)" : ""}`).join(", ")}).`,
    "",
  )
  L.push(`### time to interactive, ${DOCS} shared documents`, "")
  L.push(
    "A client joined from the invite link (comment access to each document); times on the page's own clock. " +
      "*Reload*: from navigation start; *listed* = every title in the list; *interactive* = a task queued at that moment has run and a frame was made after it. " +
      `*First open*: a fresh context joins as a new client, from the join form's submit to the same two points (the documents come from the relay). Long tasks: ≥ 50 ms, in the ${QUIET_MS / 1000} s after the list.`,
    "",
  )
  L.push("| case | measure | min | median | max | runs |", "|---|---|---|---|---|---|")
  L.push(`| reload | listed | ${fmtMs(listed.min)} | ${fmtMs(listed.median)} | ${fmtMs(listed.max)} | ${listed.n} |`)
  L.push(`| reload | interactive | ${fmtMs(tti.min)} | ${fmtMs(tti.median)} | ${fmtMs(tti.max)} | ${tti.n} |`)
  const la = stats(r.tti.runs.map(x => x.longAfterTotal))
  const lm = stats(r.tti.runs.map(x => x.longAfterMax))
  const lb = stats(r.tti.runs.map(x => x.longBefore))
  L.push(`| reload | long tasks before the list, total | ${fmtMs(lb.min)} | ${fmtMs(lb.median)} | ${fmtMs(lb.max)} | ${lb.n} |`)
  L.push(`| reload | long tasks after the list, total | ${fmtMs(la.min)} | ${fmtMs(la.median)} | ${fmtMs(la.max)} | ${la.n} |`)
  L.push(`| reload | longest task after the list | ${fmtMs(lm.min)} | ${fmtMs(lm.median)} | ${fmtMs(lm.max)} | ${lm.n} |`)
  L.push(`| first open (join) | listed | ${fmtMs(freshL.min)} | ${fmtMs(freshL.median)} | ${fmtMs(freshL.max)} | ${freshL.n} |`)
  L.push(`| first open (join) | interactive | ${fmtMs(freshI.min)} | ${fmtMs(freshI.median)} | ${fmtMs(freshI.max)} | ${freshI.n} |`)
  L.push("")
  L.push(`Reloads, interactive: ${r.tti.runs.map(x => fmtMs(x.interactive)).join(", ")}.`, "")
  L.push(`### typing, ${r.setup.bodyLength.toLocaleString("en-US")}-character requirements document`, "")
  L.push(
    `Staff (the CLI's key imported into the page) opened the document (${fmtMs(r.typing.openMs)} from the route change to the editor holding the body) and pressed ${KEYS} keys in the middle of the body, one every ${INTERVAL_MS} ms (${(KEYS / r.typing.typingSeconds).toFixed(1)} keys a second), connected to the relay. ` +
      "*Per key* = from the keydown event's timeStamp to the end of the first frame after the editor's state and DOM hold the character (requestAnimationFrame, then a task queued from it); " +
      "the relay acknowledged every edit and a CLI replica had the text after `rapport sync`.",
    "",
  )
  L.push("| measure | median | p95 | p99 | max | mean |", "|---|---|---|---|---|---|")
  L.push(`| per key: keydown → next frame done | ${fmtMs(keys.median)} | ${fmtMs(keys.p95)} | ${fmtMs(keys.p99)} | ${fmtMs(keys.max)} | ${fmtMs(keys.mean)} |`)
  L.push(`| of which keydown → that frame's start | ${fmtMs(toFrame.median)} | ${fmtMs(toFrame.p95)} | ${fmtMs(toFrame.p99)} | ${fmtMs(toFrame.max)} | ${fmtMs(toFrame.mean)} |`)
  L.push(`| of which keydown → the editor's state holds the character (the page's work: ProseMirror, the automerge change, the sync message) | ${fmtMs(applied.median)} | ${fmtMs(applied.p95)} | ${fmtMs(applied.p99)} | ${fmtMs(applied.max)} | ${fmtMs(applied.mean)} |`)
  L.push(`| of which the key waiting for the main thread | ${fmtMs(delay.median)} | ${fmtMs(delay.p95)} | ${fmtMs(delay.p99)} | ${fmtMs(delay.max)} | ${fmtMs(delay.mean)} |`)
  L.push(`| Chromium's Event Timing: keydown → next frame presented (8 ms steps; a key under 16 ms has no entry) | ${et.row} |`)
  L.push(`| keyboard.press + read-back, seen from Node (CDP round trips included) | ${fmtMs(trip.median)} | ${fmtMs(trip.p95)} | ${fmtMs(trip.p99)} | ${fmtMs(trip.max)} | ${fmtMs(trip.mean)} |`)
  L.push(`| the floor: per key into a short document (${r.control.bodyBefore} characters) | ${fmtMs(floor.median)} | ${fmtMs(floor.p95)} | ${fmtMs(floor.p99)} | ${fmtMs(floor.max)} | ${fmtMs(floor.mean)} |`)
  L.push(`| the floor: keydown → that frame's start | ${fmtMs(floorFrame.median)} | ${fmtMs(floorFrame.p95)} | ${fmtMs(floorFrame.p99)} | ${fmtMs(floorFrame.max)} | ${fmtMs(floorFrame.mean)} |`)
  L.push(`| the floor: keydown → the editor's state holds the character | ${fmtMs(floorApplied.median)} | ${fmtMs(floorApplied.p95)} | ${fmtMs(floorApplied.p99)} | ${fmtMs(floorApplied.max)} | ${fmtMs(floorApplied.mean)} |`)
  L.push(`| the floor: Chromium's Event Timing | ${etFloor.row} |`)
  L.push("")
  L.push(
    `Keys over ${TARGET_KEY_MS} ms: ${over} of ${keys.n} (the floor: ${floorOver} of ${r.control.samples.length}). Event Timing entries (16 ms or more): ${et.count} of ${KEYS} keys (the floor: ${etFloor.count} of ${r.control.samples.length}). ` +
      `Long tasks while typing: ${longTyping.length}${longTyping.length ? `, total ${fmtMs(longTyping.reduce((a, b) => a + b, 0))}, longest ${fmtMs(Math.max(...longTyping))}` : ""}.`,
    "",
  )
  return L.join("\n")
}

function writeSection(file, section) {
  const text = existsSync(file) ? readFileSync(file, "utf8") : ""
  const start = text.search(/^## web app\s*$/m)
  let next
  if (start === -1) {
    next = text.replace(/\s*$/, "") + (text ? "\n\n" : "") + section.trimEnd() + "\n"
  } else {
    const rest = text.slice(start + 1)
    const m = rest.search(/^## /m)
    const end = m === -1 ? text.length : start + 1 + m
    next = text.slice(0, start) + section.trimEnd() + "\n" + (m === -1 ? "" : "\n" + text.slice(end))
  }
  writeFileSync(file, next)
}

// ---------------------------------------------------------------- main

let failed = false
let commitAtStart = "unknown"
try {
  const loadBefore = loadavg()
  try {
    commitAtStart = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8", timeout: 20000, stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    // not a git checkout
  }
  build()
  startWatchdog()
  const requireFromWeb = createRequire(join(root, "web", "package.json"))
  let chromium
  try {
    ;({ chromium } = requireFromWeb("playwright-core"))
  } catch {
    throw new Error("playwright-core is not installed in web/node_modules: run `cd web && npm ci`")
  }
  if (!existsSync(args.chromium)) throw new Error(`no Chromium at ${args.chromium}`)
  const base = await startRelay()
  log(`relay at ${base}`)
  const setup = await setUp(base)
  log(`set up: ${DOCS} documents, body of ${setup.bodyLength} characters, invite ${setup.invite.replace(/\..*/, ".…")}`)
  if (args.dist) appBase = await startDevServer(base)
  else appBase = base
  const load = await firstLoad(appBase)
  log(`first load: ${fmtMB(load.total)} on the wire`)
  browser = await bounded(
    chromium.launch({
      executablePath: args.chromium,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      timeout: 60000,
      // Our own handlers stop everything in order and remove the temporary folder.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    }),
    70000,
    "launching Chromium",
  )
  const visit = await browserFirstVisit(appBase)
  log(`browser first visit: ${visit.requests.length} requests, ${fmtBytes(visit.total)}`)
  const tti = await timeToInteractive(setup)
  if (args.profile) mkdirSync(args.profile, { recursive: true })
  const typed = await typing(setup, { doc: setup.big, title: setup.bigTitle, chars: setup.bodyLength, profile: args.profile ? join(args.profile, "typing-long.cpuprofile") : null })
  // The floor: the same keys into a short document (the BRD template's headings).
  const short = setup.shared[0]
  const control = await typing(setup, { doc: short.id, title: short.title, chars: 0, profile: args.profile ? join(args.profile, "typing-short.cpuprofile") : null })
  // The typed text reached the relay: a CLI replica has it after syncing.
  cli(setup.staffHome, ["sync"])
  const shown = cli(setup.staffHome, ["doc", "show", setup.big]).body
  if (!shown.includes(typed.typed.trim())) throw new Error("the typed text did not reach the CLI replica through the relay")
  const result = {
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    loadBefore,
    loadAfter: loadavg(),
    setup,
    load,
    visit,
    tti,
    typing: typed,
    control,
    commit: commitAtStart,
  }
  const section = markdown(result)
  console.log(section)
  if (args.write) {
    writeSection(args.out, section)
    log(`wrote the web app section of ${relative(process.cwd(), args.out) || args.out}`)
  }
} catch (error) {
  failed = true
  console.error(`web.mjs: ${error?.stack ?? error}`)
} finally {
  await cleanup()
}
process.exit(failed ? 1 : 0)
