// The web app's entry: loads automerge, the person's key and the kept
// workspace list, starts the replica and its connection to the relay, and
// shows the view the address names.
//
// Routes: /join#WS.SECRET (invite), and in the app #/w/WS/documents,
// #/w/WS/d/DOC, #/w/WS/customers, #/w/WS/c/DOC, #/w/WS/tasks,
// #/w/WS/dashboard, #/w/WS/invites, #/account.

import { initializeWasm } from "@automerge/automerge/slim"
import wasmUrl from "@automerge/automerge/automerge.wasm"
import type { App, View } from "./app/context"
import { Names } from "./app/names"
import { cachedRelayId, relayId } from "./app/relay"
import { Workspace } from "./app/workspace"
import { currentWorkspace, fetchWorkspaces, keptWorkspaces, setCurrentWorkspace } from "./app/workspaces"
import { Identity } from "./identity/keys"
import { mintToken } from "./identity/token"
import * as idb from "./lib/idb"
import { Api, ApiError, type WorkspaceSummary } from "./net/api"
import type { RapportMessage } from "./net/socket"
import { Replica } from "./replica/replica"
import { fill, h } from "./ui/dom"
import { Notices } from "./ui/notices"
import { StatusBadge } from "./ui/status"
import { accountView } from "./views/account"
import { documentView } from "./views/document"
import { documentsView } from "./views/documents"
import { joinView } from "./views/join"
import { placeholder, shell, type Shell } from "./views/shell"
import { welcomeView } from "./views/welcome"
import { routeStaffView } from "./views/staff"
import { exposeForTests } from "./testing"
import { bodyText, markRuns } from "./model/body"
import { changeActors } from "./replica/actor"
import { exportKeyFile } from "./identity/keyfile"
import { spans as keptSpans } from "./editor/spans"
import { spans as automergeSpans, view as automergeView, type Doc } from "@automerge/automerge/slim"
import { readRecord, type RecordDoc, type RecordValue } from "./model/records"

/** For tests: whether the kept spans of `doc` are automerge's own. */
function spansAgree(doc: Doc<unknown>): boolean {
  const norm = (s: unknown) =>
    JSON.stringify(s, (_k, v) => {
      if (v && typeof v === "object" && "val" in v) return String(v.val)
      if (v && typeof v === "object" && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      return v
    })
  const a = norm(keptSpans(doc, ["body"]))
  const b = norm(automergeSpans(doc, ["body"]))
  if (a === b) return true
  let i = 0
  while (a[i] === b[i]) i++
  console.warn("spans differ at", i, a.slice(Math.max(0, i - 200), i + 200), "||||", b.slice(Math.max(0, i - 200), i + 200))
  return false
}

const root = document.getElementById("app")!

/** The service worker keeps the app on this device so it opens offline. */
function keepAppOffline(): void {
  if (!("serviceWorker" in navigator)) return
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(error => console.warn("rapport: the app cannot be kept for offline use", error))
}

async function boot(): Promise<void> {
  keepAppOffline()
  const notices = new Notices()
  try {
    await initializeWasm(wasmUrl)
  } catch {
    fill(root, h("main", { class: "join" }, h("div", { class: "join-card" }, h("h1", {}, "rapport could not start"), h("p", {}, "This browser could not load the app's engine (WebAssembly). Reload the page, or try an up-to-date browser."))))
    return
  }
  const storageProblem = await idb.available()
  let identity: Identity | null = null
  if (!storageProblem) {
    try {
      identity = await Identity.load()
    } catch (error) {
      notices.show("storage", "error", (error as Error).message)
    }
  }
  if (location.pathname.startsWith("/join")) {
    // Another invite pasted into the address bar: start over with it.
    window.addEventListener("hashchange", () => location.reload())
    fill(root, notices.el, joinView(identity, notices, storageProblem?.message ?? null))
    exposeForTests({ notices })
    return
  }
  if (!identity) {
    fill(root, notices.el, welcomeView(null))
    if (storageProblem) notices.show("storage", "error", storageProblem.message)
    exposeForTests({ notices })
    return
  }
  await start(identity, notices, storageProblem?.message ?? null)
}

async function start(identity: Identity, notices: Notices, storageProblem: string | null): Promise<void> {
  const me = identity
  const cached = await cachedRelayId()
  const api = cached ? new Api(me, cached) : null
  const replica = new Replica({
    identity: me,
    token: async () => mintToken(me, await relayId()),
    persistent: !storageProblem,
    onStorageError: error => notices.show("storage", error.kind === "full" ? "error" : "warning", error.message),
  })
  const names = new Names({ publicKey: me.publicKey, name: me.name })
  await names.restore()
  const badge = new StatusBadge()
  let workspaces = await keptWorkspaces()
  const app: App = {
    identity: me,
    api,
    replica,
    notices,
    names,
    workspace: null,
    navigate: route => {
      if (location.hash === route) render()
      else location.hash = route
    },
    refresh: () => render(),
  }
  let frame: Shell | null = null
  let view: View | null = null
  let removed = new Set<string>()

  const ensureApi = async (): Promise<Api | null> => {
    if (app.api) return app.api
    try {
      app.api = new Api(me, await relayId())
    } catch {
      return null
    }
    return app.api
  }

  const updateBadge = () => badge.show(replica.socket?.state ?? "offline", replica.waiting())
  let badgeTimer: ReturnType<typeof setTimeout> | undefined
  replica.onChange(() => {
    clearTimeout(badgeTimer)
    badgeTimer = setTimeout(updateBadge, 150)
  })
  replica.socket?.listen("state", state => {
    updateBadge()
    if (state === "online") {
      notices.dismiss("offline")
      void syncLists()
    }
  })
  replica.socket?.listen("message", message => onRelayMessage(app, message))
  replica.socket?.listen("closed", () => void checkMembership())
  updateBadge()

  /** After the socket closed: are we still a member? */
  async function checkMembership(): Promise<void> {
    const ws = app.workspace
    const client = await ensureApi()
    if (!ws || !client) return
    await new Promise(resolve => setTimeout(resolve, 1000))
    try {
      const list = await client.workspaces()
      workspaces = list
      if (!list.some(w => w.id === ws.id)) markRemoved(ws.id)
    } catch (error) {
      // Unreachable: the badge says offline; a refusal is said.
      refused(error)
    }
  }

  /** Says what a refusal of the API means; true if it was one. */
  function refused(error: unknown): boolean {
    if (!(error instanceof ApiError) || error.unreachable) return false
    const current = app.workspace?.id
    if (error.status === 401 && /removed/i.test(error.message) && current) {
      markRemoved(current)
    } else if (error.status === 401) {
      notices.show("auth", "error", `The relay did not accept this browser's key: ${error.message}. If this device's clock is wrong, correct it and reload.`)
    } else {
      notices.show("lists", "warning", `The relay refused to list your documents: ${error.message}`)
    }
    return true
  }

  function markRemoved(id: string): void {
    removed.add(id)
    notices.show(
      "removed",
      "error",
      "You were removed from this workspace. What is already on this device stays readable here, but nothing new is shared with you, and your edits are no longer accepted.",
    )
  }

  /** Refreshes the workspace list and the current workspace's documents. */
  async function syncLists(): Promise<void> {
    const client = await ensureApi()
    if (!client) return
    try {
      const fresh = await fetchWorkspaces(client)
      const current = app.workspace?.id
      workspaces = fresh
      if (current && !fresh.some(w => w.id === current)) markRemoved(current)
      await app.workspace?.refresh()
      for (const person of app.workspace?.people ?? []) app.names.listedAs(person.key, person.name)
      await app.workspace?.loadAll()
    } catch (error) {
      refused(error)
    }
  }

  async function selectWorkspace(id: string | null): Promise<boolean> {
    if (!id) id = currentWorkspace() ?? workspaces[0]?.id ?? null
    if (!id) {
      if (workspaces.length === 0 && (await ensureApi())) {
        workspaces = await fetchWorkspaces(app.api!).catch(() => [])
        id = workspaces[0]?.id ?? null
      }
      if (!id) return false
    }
    if (app.workspace?.id === id) return true
    let summary: WorkspaceSummary | undefined = workspaces.find(w => w.id === id)
    if (!summary && (await ensureApi())) {
      workspaces = await fetchWorkspaces(app.api!).catch(() => workspaces)
      summary = workspaces.find(w => w.id === id)
    }
    if (!summary) return false
    setCurrentWorkspace(id)
    const ws = new Workspace(summary, app.api ?? new Api(me, (await cachedRelayId()) ?? ""), replica)
    app.workspace = ws
    frame = null
    await ws.restore()
    for (const person of ws.people) app.names.listedAs(person.key, person.name)
    void ws.loadAll().then(() => replica.notify())
    void syncLists()
    return true
  }

  let rendering = 0
  async function render(): Promise<void> {
    const ticket = ++rendering
    const route = location.hash.replace(/^#\/?/, "").split("/")
    if (route[0] === "account") {
      if (!frame) await selectWorkspace(null)
      mount(accountView(app), "account")
      return
    }
    const wsId = route[0] === "w" ? route[1] : null
    const ok = await selectWorkspace(wsId)
    if (ticket !== rendering) return
    if (!ok) {
      view?.destroy?.()
      view = null
      frame = null
      fill(root, notices.el, welcomeView(me))
      return
    }
    if (removed.has(app.workspace!.id)) markRemoved(app.workspace!.id)
    const section = route[2] ?? "documents"
    const id = route[3]
    if (section === "d" && id) {
      mount({ el: h("div", { class: "page" }, h("p", { class: "loading" }, "Opening…")) }, "documents")
      const doc = await documentView(app, id)
      if (ticket !== rendering) return doc.destroy?.()
      mount(doc, "documents")
      return
    }
    if (section === "documents") return mount(documentsView(app), "documents")
    const staff = await routeStaffView(app, section, id)
    if (ticket !== rendering) return staff?.destroy?.()
    mount(staff ?? { el: placeholder("Not found", "There is nothing at this address.") }, section)
  }

  function mount(next: View, section: string): void {
    view?.destroy?.()
    view = next
    if (!frame) {
      frame = shell(app, badge, workspaces)
      fill(root, frame.el)
    }
    frame.setNav(section === "d" ? "documents" : section === "c" ? "customers" : section === "t" ? "tasks" : section)
    fill(frame.main, next.el)
    exposeForTests({ notices, app, view: next, helpers: { bodyText, markRuns, changeActors, exportKeyFile, spansAgree } })
  }

  if (storageProblem) notices.show("storage", "warning", storageProblem)
  window.addEventListener("hashchange", () => void render())
  window.addEventListener("online", () => void syncLists())
  await render()
  exposeForTests({ notices, app, view })
}

function onRelayMessage(app: App, message: RapportMessage): void {
  if (message.type === "rapport/documents") {
    const ws = app.workspace
    if (ws && message.documents.some(id => !ws.ids().includes(id))) {
      void ws
        .refresh()
        .then(() => ws.loadAll())
        .catch(() => undefined)
    }
    return
  }
  if (message.type === "rapport/removed") {
    app.workspace?.forget(message.documents)
    return
  }
  app.replica.pending.refuse(message.changes)
  app.replica.notify()
  const title = titleOf(app, message.documentId)
  const what = title ? `“${title}”` : "a document"
  const why: Record<string, string> = {
    "read-only": `you may read ${what} but not change it`,
    "actor-of-another-key": "the change was signed with an identity that belongs to someone else",
    "storage-unavailable": "the relay cannot store changes right now; it will take them when you reconnect",
    "invalid-change": "the change was damaged",
    "quota-exceeded": "you hold as many documents outside a workspace as the relay allows",
    "workspace-full": "the workspace holds as much as the relay allows; ask its operator to raise the quota",
    "comments-only": "on comments you may add your own and change or resolve only those",
  }
  const reason = why[message.reason] ?? (message.message || message.reason)
  app.notices.show(
    `rejected:${message.documentId}`,
    "error",
    `The relay refused your edit to ${what}: ${reason}. That edit stays on this device only; nobody else sees it.`,
  )
}

/**
 * What a document is called, as the relay has it: a refused edit may have
 * renamed it here, and naming it by the refused title would confuse.
 */
function titleOf(app: App, id: string): string | null {
  const record = relayRecord(app, id)
  if (!record) return null
  if (record.kind === "requirements" || record.kind === "task") return record.title
  if (record.kind === "customer") return record.name
  if (record.kind === "thread") return `the comments on ${titleOf(app, record.record) ?? "a document"}`
  return null
}

/** The record of `id` at the heads the relay acknowledged, else as this device has it. */
function relayRecord(app: App, id: string): RecordValue | null {
  const loaded = app.workspace?.loaded.get(id)
  if (!loaded?.handle.isReady()) return loaded?.record ?? null
  const doc = loaded.handle.doc() as Doc<unknown>
  const acked = app.replica.pending.acknowledged(id, doc)
  if (!acked) return loaded.record
  try {
    return readRecord(automergeView(doc, acked) as RecordDoc)
  } catch {
    return loaded.record
  }
}

void boot().catch(error => {
  console.error(error)
  root.prepend(h("p", { class: "notice notice-error", role: "alert" }, `Something went wrong while starting: ${(error as Error).message}. Reload the page to try again.`))
})
