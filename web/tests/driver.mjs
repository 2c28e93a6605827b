// Drives rapport's web app in headless Chromium for the Rust integration
// tests (and for tests/smoke.mjs): one JSON command per stdin line, one JSON
// answer per command on stdout. Prints `READY` once the browser is up and
// exits when stdin closes. Diagnostics go to stderr.
//
//   node tests/driver.mjs [--chromium /usr/bin/chromium] [--headed]
//
// Answers: {"id": <same id>, "ok": true, ...result} or
//          {"id": <same id>, "ok": false, "error": "..."}.
// `page` names a page (each in its own browser context, so its IndexedDB,
// key and replica are its own); the default is "main". Commands for one
// page run one after another in the order received; commands for different
// pages run at the same time (so two people can type at once), and their
// answers may come in any order. Every wait is on a condition with a
// bounded timeout (`timeoutMs`, default 15000), never on wall-clock time.
//
// Pages:
//   {"op":"open","page":P,"url":U,"viewport":{"width":390,"height":844},"noIndexedDB":false}
//                                 new isolated context + page at U (test hooks on); noIndexedDB
//                                 hides IndexedDB, as a browser that refuses site storage
//   {"op":"goto","page":P,"url":U}   {"op":"reload","page":P}
//   {"op":"route","page":P,"route":"#/w/WS/d/DOC"}      hash navigation in the app
//   {"op":"offline","page":P,"offline":true|false}     the context's network
//   {"op":"close","page":P}
// Joining and keys:
//   {"op":"join","page":P,"name":"Ann Lee"}           fill the /join form and submit
//                                 -> {"joined":true} or {"joined":false,"message":"…","link":bool}
//                                    (`link`: the link itself is not an invite; no form was shown)
//   {"op":"exportKey","page":P}                        -> {"file":"<key file JSON text>"}
//   {"op":"importKey","page":P,"file":"<text>"}        import through the account page's file input
//   {"op":"whoami","page":P}                           -> {"publicKey","name","actor"}
// Editor (the open requirements document):
//   {"op":"type","page":P,"text":"…","at":N|"end","delayMs":0}
//                                 real key presses at body index N (automerge text units),
//                                 `delayMs` apart (as a person types; 0 is as fast as possible)
//   {"op":"format","page":P,"format":"bold"|"italic"|"heading"|"paragraph"|"bullets"|"numbers"|"link",
//    "from":N,"to":M,"href":"https://…"}               select body N..M (optional) and apply
//   {"op":"editor","page":P}  -> {"text","runs":[{"text","marks"}],"readOnly","html"}
//   {"op":"openDoc","page":P,"title":"…"}              click the document with this title in the list
// What the page shows:
//   {"op":"state","page":P} -> {"path","titles":[...],"notices":[{key,tone,text}],"status","waiting",
//        "readOnly","readOnlyReason","present":[names],"comments":[{id,author,body,resolved,replyTo}],
//        "joinMessage","docTitle"}
//   {"op":"waitFor","page":P, one of "text":S | "notice":S | "selector":CSS | "status":"online"|"offline"
//        | "waiting":N | "comment":S | "title":S | "present":NAME | "editorText":S
//        | "editorIs":{"text":S,"runs":[{"text","marks"}]?} | "offlineReady":true, "timeoutMs":N}
//                                 editorText: the body's text holds S; editorIs: the body's text is
//                                 exactly S (and its runs, marks compared by value, are these);
//                                 offlineReady: the service worker keeping the app controls the page
// Comments (on the open record):
//   {"op":"comment","page":P,"text":"…","replyTo":CID?} -> {"commentId"} (typed into the box, submitted)
//   {"op":"resolve","page":P,"comment":CID,"reopen":false}
// Escape hatches:
//   {"op":"eval","page":P,"script":"…"}     evaluates an expression; window.rapport has app, view, helpers
//   {"op":"forceChange","page":P,"doc":ID,"field":"title","value":"…"}
//                                 writes a scalar field through the replica (as this person), bypassing the UI
//   {"op":"actors","page":P,"doc":ID} -> {"actors":[hex,...]}  the actor of every change of the document
//   {"op":"screenshot","page":P,"path":"/tmp/x.png","fullPage":false}
import readline from "node:readline"
import { parseArgs } from "node:util"
import { chromium } from "playwright-core"

const { values: args } = parseArgs({
  options: { chromium: { type: "string", default: "/usr/bin/chromium" }, headed: { type: "boolean", default: false } },
})

const DEFAULT_TIMEOUT = 15000
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: !args.headed,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
})
const pages = new Map() // name -> { context, page, errors }

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n")
}

function entry(cmd) {
  const name = cmd.page ?? "main"
  const found = pages.get(name)
  if (!found) throw new Error(`no page "${name}": open it first`)
  return found
}

async function open(cmd) {
  const name = cmd.page ?? "main"
  if (pages.has(name)) await pages.get(name).context.close()
  const context = await browser.newContext({ viewport: cmd.viewport ?? { width: 1280, height: 800 }, acceptDownloads: true })
  await context.addInitScript(() => {
    try {
      localStorage.setItem("rapport-test", "1")
    } catch {
      // an error page (offline) has no storage
    }
  })
  if (cmd.noIndexedDB) {
    // As in a browser that refuses site storage.
    await context.addInitScript(() => {
      Object.defineProperty(window, "indexedDB", { value: undefined, configurable: true })
    })
  }
  const page = await context.newPage()
  const errors = []
  page.on("pageerror", e => {
    errors.push(String(e))
    console.error(`[${name}] page error:`, e)
  })
  page.on("console", m => {
    if (m.type() === "error" || m.type() === "warning") console.error(`[${name}] ${m.type()}: ${m.text()}`)
  })
  page.on("dialog", d => void d.accept(d.defaultValue()))
  pages.set(name, { context, page, errors })
  await page.goto(cmd.url)
  return { page: name }
}

/** Waits until the app has mounted a view (or a join/welcome page). */
async function settled(page, timeoutMs = DEFAULT_TIMEOUT) {
  await page.waitForFunction(() => document.querySelector(".app, .join") !== null, null, { timeout: timeoutMs })
}

async function state(cmd) {
  const { page } = entry(cmd)
  return page.evaluate(() => {
    const r = window.rapport
    const view = r?.view
    const text = s => (s ?? "").trim()
    const status = document.querySelector(".status")
    const comments = [...document.querySelectorAll("[data-comment]")].map(el => ({
      id: el.getAttribute("data-comment"),
      author: text(el.querySelector(".author")?.textContent),
      body: text(el.querySelector(".comment-body")?.textContent),
      resolved: el.classList.contains("resolved"),
      replyTo: el.parentElement?.closest("[data-comment]")?.getAttribute("data-comment") ?? null,
    }))
    const docTitle = document.querySelector("input[data-doc-title]")
    return {
      path: location.pathname + location.hash,
      titles: [...document.querySelectorAll(".card [data-doc-title]")].map(el => text(el.textContent)),
      notices: r?.notices?.list?.() ?? [...document.querySelectorAll("[data-notice]")].map(el => ({ key: el.getAttribute("data-notice"), text: text(el.textContent) })),
      status: status?.getAttribute("data-status") ?? null,
      waiting: status ? Number(status.getAttribute("data-waiting") ?? 0) : null,
      statusText: text(status?.textContent),
      readOnly: view && "readOnly" in view ? view.readOnly : null,
      readOnlyReason: text(document.querySelector("[data-readonly-reason]")?.textContent) || null,
      present: [...document.querySelectorAll("[data-present]")].map(el => el.getAttribute("data-present")),
      comments,
      joinMessage: (() => {
        const m = document.querySelector("[data-join-message]:not([hidden]), [data-join-error]")
        return m ? text(m.textContent) : null
      })(),
      docTitle: docTitle ? docTitle.value : null,
    }
  })
}

async function editorInfo(cmd) {
  const { page } = entry(cmd)
  return page.evaluate(() => {
    const r = window.rapport
    const view = r?.view
    if (!view?.editor) {
      const legacy = document.querySelector("[data-legacy]")
      if (legacy) return { text: legacy.innerText, runs: [], readOnly: true, html: legacy.innerHTML }
      throw new Error("no document editor is open")
    }
    const handle = r.app.workspace.loaded.get(location.hash.split("/")[4])?.handle
    const doc = handle.doc()
    return {
      text: r.helpers.bodyText(doc),
      runs: r.helpers.markRuns(doc),
      readOnly: !view.editor.view.editable,
      html: view.editor.view.dom.innerHTML,
    }
  })
}

async function typeText(cmd) {
  const { page } = entry(cmd)
  await page.waitForFunction(() => window.rapport?.view?.editor, null, { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT })
  await page.evaluate(at => window.rapport.view.editor.placeCursor(at), cmd.at ?? "end")
  await page.keyboard.type(cmd.text, { delay: cmd.delayMs ?? 0 })
  return {}
}

async function format(cmd) {
  const { page } = entry(cmd)
  await page.waitForFunction(() => window.rapport?.view?.editor, null, { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT })
  const done = await page.evaluate(({ format, from, to, href }) => {
    const editor = window.rapport.view.editor
    if (typeof from === "number") editor.select(from, typeof to === "number" ? to : from)
    return editor.format(format, href)
  }, cmd)
  return { applied: done }
}

const CONDITIONS = ["text", "notice", "selector", "status", "waiting", "comment", "title", "present", "editorText", "editorIs", "offlineReady"]

/** Runs in the page (no eval there: the CSP forbids it). */
function holds([kind, value]) {
  const text = el => (el?.textContent ?? "").trim()
  switch (kind) {
    case "text":
      return document.body.innerText.includes(value)
    case "notice":
      return [...document.querySelectorAll("[data-notice], [data-join-message]:not([hidden]), [data-join-error]")].some(el => el.textContent.includes(value))
    case "selector":
      return document.querySelector(value) !== null
    case "status":
      return document.querySelector(".status")?.getAttribute("data-status") === value
    case "waiting":
      return Number(document.querySelector(".status")?.getAttribute("data-waiting")) === value
    case "comment":
      return [...document.querySelectorAll(".comment-body")].some(el => el.textContent.includes(value))
    case "title":
      return [...document.querySelectorAll(".card [data-doc-title]")].some(el => text(el) === value)
    case "present":
      return [...document.querySelectorAll("[data-present]")].some(el => el.getAttribute("data-present") === value)
    case "editorText": {
      const r = window.rapport
      const handle = r?.app?.workspace?.loaded.get(location.hash.split("/")[4])?.handle
      return !!handle && r.helpers.bodyText(handle.doc()).includes(value)
    }
    case "editorIs": {
      const r = window.rapport
      const handle = r?.app?.workspace?.loaded.get(location.hash.split("/")[4])?.handle
      if (!handle) return false
      const doc = handle.doc()
      if (r.helpers.bodyText(doc) !== value.text) return false
      if (!value.runs) return true
      const norm = runs => JSON.stringify(runs.map(run => [run.text, Object.keys(run.marks ?? {}).sort().map(k => [k, run.marks[k]])]))
      return norm(r.helpers.markRuns(doc)) === norm(value.runs)
    }
    case "offlineReady":
      return !!navigator.serviceWorker?.controller === value
    default:
      return false
  }
}

async function waitFor(cmd) {
  const { page } = entry(cmd)
  const kind = CONDITIONS.find(k => k in cmd)
  if (!kind) throw new Error(`waitFor needs one of ${CONDITIONS.join(", ")}`)
  const timeout = cmd.timeoutMs ?? DEFAULT_TIMEOUT
  try {
    await page.waitForFunction(holds, [kind, cmd[kind]], { timeout, polling: 100 })
  } catch {
    const editor = kind.startsWith("editor") ? await editorInfo(cmd).catch(e => String(e)) : undefined
    const shown = { ...(await state(cmd)), ...(editor ? { editor: { text: editor.text, runs: editor.runs } } : {}) }
    throw new Error(`timeout after ${timeout} ms waiting for ${kind} ${JSON.stringify(cmd[kind])}; page shows ${JSON.stringify(shown)}`)
  }
  return {}
}

async function comment(cmd) {
  const { page } = entry(cmd)
  const selector = cmd.replyTo ? `[data-comment="${cmd.replyTo}"] textarea[data-composer]` : 'textarea[data-composer="new"]'
  if (cmd.replyTo) {
    await page.click(`[data-comment="${cmd.replyTo}"] [data-action=reply]`)
  }
  await page.fill(selector, cmd.text)
  await page.locator(selector).press("Control+Enter")
  await page.waitForFunction(
    text => [...document.querySelectorAll(".comment-body")].some(el => el.textContent.includes(text)),
    cmd.text,
    { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT },
  )
  const commentId = await page.evaluate(
    text => [...document.querySelectorAll("[data-comment]")].reverse().find(el => el.querySelector(":scope > .comment-body")?.textContent.includes(text))?.getAttribute("data-comment"),
    cmd.text,
  )
  return { commentId }
}

async function resolve(cmd) {
  const { page } = entry(cmd)
  const action = cmd.reopen ? "reopen" : "resolve"
  const show = page.locator("button", { hasText: /Show resolved/ })
  if (cmd.reopen && (await show.count())) await show.first().click()
  await page.click(`[data-comment="${cmd.comment}"] [data-action=${action}]`)
  await page.waitForFunction(
    ({ id, reopen }) => {
      const el = document.querySelector(`[data-comment="${id}"]`)
      return reopen ? el && !el.classList.contains("resolved") : !el || el.classList.contains("resolved")
    },
    { id: cmd.comment, reopen: !!cmd.reopen },
    { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT },
  )
  return {}
}

const ops = {
  open,
  async goto(cmd) {
    await entry(cmd).page.goto(cmd.url)
    return {}
  },
  async reload(cmd) {
    const { page } = entry(cmd)
    await page.reload({ waitUntil: "domcontentloaded" })
    await settled(page, cmd.timeoutMs)
    return {}
  },
  async route(cmd) {
    const { page } = entry(cmd)
    await page.evaluate(route => {
      location.hash = route
    }, cmd.route)
    return {}
  },
  async offline(cmd) {
    await entry(cmd).context.setOffline(!!cmd.offline)
    return {}
  },
  async close(cmd) {
    const e = entry(cmd)
    await e.context.close()
    pages.delete(cmd.page ?? "main")
    return {}
  },
  async join(cmd) {
    const { page } = entry(cmd)
    await page.waitForSelector("form.join-card input[name=name], [data-join-error]", { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT })
    if (await page.$("[data-join-error]")) return { joined: false, message: (await page.textContent("[data-join-error]")).trim(), link: true }
    await page.fill("form.join-card input[name=name]", cmd.name)
    await page.click("form.join-card button[type=submit]")
    await page.waitForFunction(() => document.querySelector(".app") || !document.querySelector("[data-join-message]")?.hidden, null, {
      timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT,
    })
    const message = await page.evaluate(() => {
      const m = document.querySelector("[data-join-message]")
      return m && !m.hidden ? m.textContent : null
    })
    if (message) return { joined: false, message, link: false }
    return { joined: true }
  },
  async openDoc(cmd) {
    const { page } = entry(cmd)
    await page.locator(".card", { hasText: cmd.title }).first().click({ timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT })
    await page.waitForFunction(() => window.rapport?.view && "readOnly" in window.rapport.view, null, { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT })
    return {}
  },
  async exportKey(cmd) {
    const { page } = entry(cmd)
    const file = await page.evaluate(() => window.rapport.helpers.exportKeyFile(window.rapport.app.identity))
    return { file }
  },
  async importKey(cmd) {
    const { page } = entry(cmd)
    const publicKey = JSON.parse(cmd.file).public_key
    if (await page.$(".app")) {
      await page.evaluate(() => {
        location.hash = "#/account"
      })
    }
    const input = page.locator('input[type=file][aria-label="Key file"]')
    await input.setInputFiles({ name: "key.json", mimeType: "application/json", buffer: Buffer.from(cmd.file) })
    await page.waitForFunction(
      pk => window.rapport?.app?.identity?.publicKey === pk || document.querySelector(".notice-error, .form-error:not([hidden])"),
      publicKey,
      { timeout: cmd.timeoutMs ?? DEFAULT_TIMEOUT, polling: 100 },
    )
    const error = await page.evaluate(pk => (window.rapport?.app?.identity?.publicKey === pk ? null : document.querySelector(".notice-error .notice-text, .form-error:not([hidden])")?.textContent), publicKey)
    if (error) throw new Error(error)
    return {}
  },
  async whoami(cmd) {
    const { page } = entry(cmd)
    return page.evaluate(() => ({ publicKey: window.rapport.app.identity.publicKey, name: window.rapport.app.identity.name, actor: window.rapport.app.replica.actor }))
  },
  type: typeText,
  format,
  editor: editorInfo,
  state,
  waitFor,
  comment,
  resolve,
  async eval(cmd) {
    const { page } = entry(cmd)
    const value = await page.evaluate(cmd.script)
    return { value: value === undefined ? null : JSON.parse(JSON.stringify(value)) }
  },
  async forceChange(cmd) {
    const { page } = entry(cmd)
    await page.evaluate(async ({ doc, field, value }) => {
      const r = window.rapport
      const loaded = await r.app.workspace.open(doc)
      if (!loaded) throw new Error(`document ${doc} is not available here`)
      r.app.replica.change(loaded.handle, d => {
        d[field] = value
      })
    }, cmd)
    return {}
  },
  async actors(cmd) {
    const { page } = entry(cmd)
    const actors = await page.evaluate(async doc => {
      const r = window.rapport
      const loaded = await r.app.workspace.open(doc)
      if (!loaded) throw new Error(`document ${doc} is not available here`)
      return r.helpers.changeActors(loaded.handle.doc())
    }, cmd.doc)
    return { actors }
  },
  async screenshot(cmd) {
    const { page } = entry(cmd)
    await page.screenshot({ path: cmd.path, fullPage: !!cmd.fullPage })
    return { path: cmd.path }
  },
  async errors(cmd) {
    return { errors: entry(cmd).errors }
  },
}

async function run(cmd) {
  try {
    const op = ops[cmd.op]
    if (!op) throw new Error(`unknown op ${JSON.stringify(cmd.op)}`)
    send({ ...(await op(cmd)), id: cmd.id ?? null, ok: true })
  } catch (error) {
    send({ id: cmd.id ?? null, ok: false, error: String(error?.message ?? error) })
  }
}

console.log("READY")
const lines = readline.createInterface({ input: process.stdin })
const queues = new Map() // page name -> the promise of its last command
lines.on("line", line => {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch {
    return send({ id: null, ok: false, error: "not JSON" })
  }
  const name = cmd.page ?? "main"
  const queue = (queues.get(name) ?? Promise.resolve()).then(() => run(cmd))
  queues.set(name, queue)
})
lines.on("close", () => {
  void Promise.all(queues.values())
    .then(() => browser.close())
    .then(() => process.exit(0))
})
