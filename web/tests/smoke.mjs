// An end-to-end check to run by hand against a live relay, through
// tests/driver.mjs. It serves web/dist with dev-server.mjs in front of the
// relay, then: a client joins from an invite, sees the shared document and
// its thread, comments; staff (the key file of a CLI home, converted with
// --staff-seed) types and formats while the client watches; the client goes
// offline, comments, reloads offline, comes back and its edits arrive; a
// forced change to the read-only document is refused and said so; and
// screenshots at phone and laptop sizes land in --out.
//
//   node tests/smoke.mjs --relay http://127.0.0.1:PORT --invite 'LINK' \
//        --staff-key staff-key.json --title "Customer portal" [--out tests/out]
//
// Prints each step and `N passed, N failed` at the end; exits 1 on a failure.
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync } from "node:fs"
import readline from "node:readline"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    relay: { type: "string" },
    invite: { type: "string" },
    "staff-key": { type: "string" },
    title: { type: "string", default: "Customer portal" },
    out: { type: "string", default: join(here, "out") },
  },
})
if (!args.relay || !args.invite || !args["staff-key"]) {
  console.error("usage: node tests/smoke.mjs --relay URL --invite LINK --staff-key FILE [--title T] [--out DIR]")
  process.exit(64)
}
mkdirSync(args.out, { recursive: true })

function lines(child, onLine) {
  readline.createInterface({ input: child.stdout }).on("line", onLine)
}

const server = spawn("node", [join(here, "..", "dev-server.mjs"), "--relay", args.relay], { stdio: ["ignore", "pipe", "inherit"] })
const base = await new Promise(resolve => lines(server, l => l.startsWith("LISTENING ") && resolve(l.slice(10))))

const driver = spawn("node", [join(here, "driver.mjs")], { stdio: ["pipe", "pipe", "inherit"] })
const answers = new Map()
let ready
const isReady = new Promise(r => (ready = r))
lines(driver, line => {
  if (line === "READY") return ready()
  const m = JSON.parse(line)
  answers.get(m.id)?.(m)
})
let next = 0
async function send(command) {
  await isReady
  const id = ++next
  const answer = new Promise(r => answers.set(id, r))
  driver.stdin.write(JSON.stringify({ id, ...command }) + "\n")
  const a = await answer
  if (!a.ok) throw new Error(`${command.op}: ${a.error}`)
  return a
}

let passed = 0
let failed = 0
async function step(name, body) {
  try {
    await body()
    passed++
    console.log(`ok   ${name}`)
  } catch (error) {
    failed++
    console.log(`FAIL ${name}: ${error.message}`)
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(what)
}

const fragment = args.invite.slice(args.invite.indexOf("#"))
const C = "client"
const S = "staff"
let docPath = ""

await step("a client joins from the invite link", async () => {
  await send({ op: "open", page: C, url: `${base}/join${fragment}` })
  const joined = await send({ op: "join", page: C, name: "Carla Client" })
  expect(joined.joined, `not joined: ${joined.message}`)
  await send({ op: "waitFor", page: C, title: args.title, timeoutMs: 20000 })
})
await step("the client sees only the shared document, read-only with the reason, and its thread", async () => {
  const list = await send({ op: "state", page: C })
  expect(list.titles.length === 1 && list.titles[0] === args.title, `titles ${JSON.stringify(list.titles)}`)
  await send({ op: "openDoc", page: C, title: args.title })
  const s = await send({ op: "state", page: C })
  docPath = s.path.slice(s.path.indexOf("#"))
  expect(s.readOnly === true, "editor not read-only")
  expect(s.readOnlyReason?.includes("comment"), `reason ${s.readOnlyReason}`)
})
await step("the client comments; staff opens the same document and sees it", async () => {
  await send({ op: "comment", page: C, text: "Can we see a mock-up first?" })
  await send({ op: "open", page: S, url: `${base}/` })
  await send({ op: "importKey", page: S, file: readFileSync(args["staff-key"], "utf8") })
  await send({ op: "waitFor", page: S, title: args.title, timeoutMs: 20000 })
  await send({ op: "route", page: S, route: docPath })
  await send({ op: "waitFor", page: S, comment: "Can we see a mock-up first?" })
})
await step("each sees the other present", async () => {
  await send({ op: "waitFor", page: S, present: "Carla Client" })
  await send({ op: "waitFor", page: C, present: "Sam Staff" })
})
await step("staff types and formats; the client sees it live", async () => {
  await send({ op: "type", page: S, text: "Buyers track their orders online. ", at: "end" })
  await send({ op: "waitFor", page: C, editorText: "Buyers track their orders online." })
  await send({ op: "format", page: S, format: "bold", from: 1, to: 6 })
  const e = await send({ op: "editor", page: S })
  expect(e.runs.some(r => r.marks.strong), "no bold run")
})
await step("offline: the client comments, reloads offline, still sees everything and the waiting edit", async () => {
  await send({ op: "offline", page: C, offline: true })
  await send({ op: "waitFor", page: C, status: "offline" })
  await send({ op: "comment", page: C, text: "Written offline." })
  await send({ op: "waitFor", page: C, waiting: 1 })
  await send({ op: "reload", page: C })
  await send({ op: "waitFor", page: C, comment: "Written offline.", timeoutMs: 20000 })
  await send({ op: "waitFor", page: C, waiting: 1 })
  const s = await send({ op: "state", page: C })
  expect(s.statusText.includes("Offline"), `status ${s.statusText}`)
  await send({ op: "screenshot", page: C, path: join(args.out, "client-offline-laptop.png") })
})
await step("back online, the waiting edit reaches staff", async () => {
  await send({ op: "offline", page: C, offline: false })
  await send({ op: "waitFor", page: C, status: "online", timeoutMs: 30000 })
  await send({ op: "waitFor", page: C, waiting: 0, timeoutMs: 20000 })
  await send({ op: "waitFor", page: S, comment: "Written offline.", timeoutMs: 20000 })
})
await step("staff replies and resolves; the client sees both", async () => {
  const s = await send({ op: "state", page: S })
  const question = s.comments.find(c => c.body.includes("mock-up"))
  await send({ op: "comment", page: S, text: "Yes, next week.", replyTo: question.id })
  await send({ op: "resolve", page: S, comment: question.id })
  await send({ op: "waitFor", page: C, comment: "Yes, next week." }).catch(async () => {
    await send({ op: "waitFor", page: C, text: "Show resolved" })
  })
})
await step("a forced change by the comment-only client is refused and said so", async () => {
  const doc = docPath.split("/").pop()
  await send({ op: "forceChange", page: C, doc, field: "title", value: "Hacked" })
  await send({ op: "waitFor", page: C, notice: "refused", timeoutMs: 20000 })
})
await step("a malformed invite link says so", async () => {
  await send({ op: "open", page: "bad", url: `${base}/join#ws-abc` })
  await send({ op: "waitFor", page: "bad", notice: "not complete" })
})
await step("a revoked invite says so and keeps the name typed", async () => {
  const ws = docPath.split("/")[2]
  const doc = docPath.split("/").pop()
  const made = await send({
    op: "eval",
    page: S,
    script: `(async () => { const api = window.rapport.app.api; const i = await api.createInvite(${JSON.stringify(ws)}, { role: "client", documents: [[${JSON.stringify(doc)}, "read"]], level: null, expires_in_secs: 3600, uses: 1 }); await api.revokeInvite(${JSON.stringify(ws)}, i.id); return i.secret })()`,
  })
  await send({ op: "goto", page: "bad", url: `${base}/join#${ws}.${made.value}` })
  const joined = await send({ op: "join", page: "bad", name: "Rita Revoked" })
  expect(!joined.joined && /revoked/i.test(joined.message), `message ${joined.message}`)
  const kept = await send({ op: "eval", page: "bad", script: "document.querySelector('input[name=name]').value" })
  expect(kept.value === "Rita Revoked", "name lost")
})
await step("joining with the relay unreachable says so", async () => {
  await send({ op: "goto", page: "bad", url: `${base}/join${fragment}` })
  await send({ op: "waitFor", page: "bad", selector: "input[name=name]" })
  await send({ op: "offline", page: "bad", offline: true })
  const joined = await send({ op: "join", page: "bad", name: "Otto Offline" })
  expect(!joined.joined && /cannot be reached/.test(joined.message), `message ${joined.message}`)
  await send({ op: "close", page: "bad" })
})
await step("a browser without IndexedDB is told, and joining says why it cannot", async () => {
  await send({ op: "open", page: "nodb", url: `${base}/join${fragment}`, noIndexedDB: true })
  await send({ op: "waitFor", page: "nodb", notice: "does not let rapport keep data" })
  await send({ op: "close", page: "nodb" })
})
await step("screenshots at phone and laptop sizes", async () => {
  for (const [who, label] of [
    [C, "client"],
    [S, "staff"],
  ]) {
    await send({ op: "screenshot", page: who, path: join(args.out, `${label}-document-laptop.png`) })
  }
  await send({ op: "open", page: "phone", url: `${base}/`, viewport: { width: 390, height: 844 } })
  await send({ op: "importKey", page: "phone", file: readFileSync(args["staff-key"], "utf8") })
  await send({ op: "waitFor", page: "phone", title: args.title, timeoutMs: 20000 })
  await send({ op: "route", page: "phone", route: docPath })
  await send({ op: "waitFor", page: "phone", selector: ".editor-body" })
  await send({ op: "screenshot", page: "phone", path: join(args.out, "staff-document-phone.png"), fullPage: true })
  const ws = docPath.split("/")[2]
  await send({ op: "route", page: "phone", route: `#/w/${ws}/dashboard` })
  await send({ op: "waitFor", page: "phone", selector: "[data-pipeline]" })
  await send({ op: "screenshot", page: "phone", path: join(args.out, "dashboard-phone.png"), fullPage: true })
  await send({ op: "route", page: S, route: `#/w/${ws}/dashboard` })
  await send({ op: "waitFor", page: S, selector: "[data-pipeline]" })
  await send({ op: "screenshot", page: S, path: join(args.out, "dashboard-laptop.png") })
})

await step("a removed client is told so", async () => {
  const ws = docPath.split("/")[2]
  const me = await send({ op: "whoami", page: C })
  await send({ op: "eval", page: S, script: `window.rapport.app.api.removeMember(${JSON.stringify(ws)}, ${JSON.stringify(me.publicKey)})` })
  await send({ op: "waitFor", page: C, notice: "You were removed from this workspace", timeoutMs: 30000 })
  await send({ op: "screenshot", page: C, path: join(args.out, "client-removed-laptop.png") })
})

console.log(`${passed} passed, ${failed} failed`)
driver.stdin.end()
server.kill()
process.exit(failed ? 1 : 0)
