// The page for a browser with no key and no invite: what rapport is, how
// to get in (an invite link), importing a key, or starting a workspace.

import { relayId } from "../app/relay"
import { keepWorkspaces, setCurrentWorkspace } from "../app/workspaces"
import { importKeyFile } from "../identity/keyfile"
import { Identity } from "../identity/keys"
import { Api, ApiError } from "../net/api"
import { fill, h } from "../ui/dom"

export function welcomeView(identity: Identity | null): HTMLElement {
  const el = h("main", { class: "join" })
  const message = h("p", { class: "form-error", role: "alert", hidden: true })
  const say = (text: string) => {
    message.textContent = text
    message.hidden = false
  }
  const name = h("input", { required: true, maxlength: 100, value: identity?.name ?? "", "aria-label": "Your name" })
  const wsName = h("input", { required: true, maxlength: 200, "aria-label": "Workspace name" })
  const file = h("input", { type: "file", accept: ".json,application/json", "aria-label": "Key file" })
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0]
    if (!chosen) return
    try {
      await importKeyFile(await chosen.text())
      location.replace("/")
    } catch (error) {
      say((error as Error).message)
    }
  })
  fill(
    el,
    h(
      "div",
      { class: "join-card stack" },
      h("h1", {}, identity ? "No workspace yet" : "Welcome to rapport"),
      h("p", {}, "To see the documents someone shared with you, open the invite link they sent you."),
      message,
      h("h2", {}, "Already have a key?"),
      h("p", {}, "Import the key file you exported on another device or from the rapport command line."),
      file,
      h("h2", {}, "Start a workspace"),
      h(
        "form",
        {
          class: "stack",
          onsubmit: (e: Event) => {
            e.preventDefault()
            void (async () => {
              try {
                const me = identity ?? (await Identity.create(name.value))
                if (identity && name.value.trim() && name.value.trim() !== identity.name) await identity.rename(name.value)
                const api = new Api(me, await relayId())
                const made = await api.createWorkspace(wsName.value.trim(), me.name)
                await keepWorkspaces(await api.workspaces().catch(() => [made]))
                setCurrentWorkspace(made.id)
                location.replace(`/#/w/${made.id}`)
              } catch (error) {
                say(error instanceof ApiError && error.unreachable ? "The relay cannot be reached right now; try again in a moment." : `The workspace was not made: ${(error as Error).message}`)
              }
            })()
          },
        },
        h("label", {}, "Your name", name),
        h("label", {}, "Workspace name", wsName),
        h("button", { type: "submit", class: "button-primary" }, "Create workspace"),
      ),
    ),
  )
  return el
}
