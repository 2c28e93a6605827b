// The person's key: their name, their public key, export to a file (for
// another device or the `rapport` CLI: `rapport init --import FILE`) and
// import from one.

import type { App, View } from "../app/context"
import { exportKeyFile, importKeyFile, keyFileName } from "../identity/keyfile"
import { fill, h } from "../ui/dom"

export function accountView(app: App): View {
  const el = h("div", { class: "page narrow" })
  const name = h("input", { value: app.identity.name, "aria-label": "Your name", maxlength: 100 })
  const file = h("input", { type: "file", accept: ".json,application/json", "aria-label": "Key file" })
  file.addEventListener("change", () => void importFrom(app, file))
  fill(
    el,
    h("h1", {}, "Your key"),
    h("p", {}, "rapport knows you by a key made in this browser. Nobody else has it, and it never leaves this device unless you export it."),
    h(
      "form",
      {
        class: "stack",
        onsubmit: (e: Event) => {
          e.preventDefault()
          void app.identity.rename(name.value).then(() => app.notices.show("account", "success", "Your name is saved. It is given to a workspace when you join it."))
        },
      },
      h("label", {}, "Your name", name),
      h("button", { type: "submit", class: "button-quiet" }, "Save name"),
    ),
    h("h2", {}, "Public key"),
    h("p", { class: "mono", "data-public-key": "" }, app.identity.publicKey),
    h("h2", {}, "Use this key elsewhere"),
    h(
      "p",
      {},
      "Export the key to a file to use it on another device, or with the rapport command line (",
      h("code", {}, "rapport init --import FILE"),
      "). Anyone with the file can act as you: keep it safe.",
    ),
    h("button", { type: "button", class: "button-primary", onclick: () => void download(app) }, "Export key"),
    h("h2", {}, "Import a key"),
    h("p", {}, "Replace this browser's key with one exported from another device or from the rapport command line."),
    file,
  )
  return { el }
}

async function download(app: App): Promise<void> {
  try {
    const text = await exportKeyFile(app.identity)
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }))
    const a = h("a", { href: url, download: keyFileName(app.identity) })
    document.body.append(a)
    a.click()
    a.remove()
    setTimeout(() => URL.revokeObjectURL(url), 10_000)
  } catch (error) {
    app.notices.show("account", "error", `The key could not be exported: ${(error as Error).message}`)
  }
}

async function importFrom(app: App, input: HTMLInputElement): Promise<void> {
  const chosen = input.files?.[0]
  if (!chosen) return
  if (!window.confirm("Replace this browser's key? Workspaces you joined with the current key stay with that key: export it first if you still need it.")) return
  try {
    const identity = await importKeyFile(await chosen.text())
    app.notices.show("account", "success", `Key imported: you are now ${identity.name || identity.publicKey}. Reloading…`)
    setTimeout(() => location.reload(), 800)
  } catch (error) {
    app.notices.show("account", "error", (error as Error).message)
  }
}
