// /join#WORKSPACE.SECRET: asks for a name, makes a key if this browser has
// none, redeems the invite, and opens the workspace. Every failure is said
// in plain words, and the name typed stays in the box.

import { relayId } from "../app/relay"
import { parseInvite } from "../app/invite"
import { keepWorkspaces, keptWorkspaces, setCurrentWorkspace } from "../app/workspaces"
import { Identity } from "../identity/keys"
import { ApiError, Api } from "../net/api"
import { fill, h } from "../ui/dom"
import type { Notices } from "../ui/notices"

export function joinView(identity: Identity | null, notices: Notices, storageProblem: string | null): HTMLElement {
  const invite = parseInvite(location.hash)
  const el = h("main", { class: "join" })
  if (!invite) {
    fill(
      el,
      h(
        "div",
        { class: "join-card", "data-join-error": "malformed" },
        h("h1", {}, "This invite link is not complete"),
        h("p", {}, "The link should look like ", h("code", {}, `${location.origin}/join#ws-….…`), ". It may have been cut off when it was copied. Ask the person who invited you to send it again."),
      ),
    )
    return el
  }
  const name = h("input", { name: "name", autocomplete: "name", required: true, maxlength: 100, value: identity?.name ?? "", "aria-label": "Your name" })
  const button = h("button", { type: "submit", class: "button-primary" }, "Join")
  const message = h("p", { class: "form-error", role: "alert", hidden: true, "data-join-message": "" })
  const say = (text: string, kind: string) => {
    message.textContent = text
    message.dataset.kind = kind
    message.hidden = false
  }
  if (storageProblem) say(storageProblem, "storage")
  const form = h(
    "form",
    {
      class: "join-card stack",
      onsubmit: (e: Event) => {
        e.preventDefault()
        void submit()
      },
    },
    h("h1", {}, "You are invited"),
    h("p", {}, "Join to see the documents shared with you, comment on them and work on them together — also offline."),
    h("label", {}, "Your name", name),
    message,
    button,
    h("p", { class: "fine-print" }, "A key that identifies you is made in this browser and stays on this device."),
  )
  fill(el, form)

  async function submit(): Promise<void> {
    const who = name.value.trim()
    if (!who) return say("Please give your name: the others see it beside your comments.", "name")
    button.disabled = true
    button.textContent = "Joining…"
    message.hidden = true
    try {
      let me = identity
      if (!me) {
        me = await Identity.create(who)
      } else if (me.name !== who) {
        await me.rename(who)
      }
      const api = new Api(me, await relayId())
      const joined = await api.redeem(invite!.workspace, invite!.secret, who)
      let list = await keptWorkspaces()
      try {
        list = await api.workspaces()
      } catch {
        list = [...list.filter(w => w.id !== joined.workspace), { id: joined.workspace, name: "Workspace", role: joined.role }]
      }
      await keepWorkspaces(list)
      setCurrentWorkspace(joined.workspace)
      location.replace(`/#/w/${joined.workspace}`)
    } catch (error) {
      button.disabled = false
      button.textContent = "Join"
      say(joinFailure(error), error instanceof ApiError ? `http-${error.status}` : "other")
      notices.dismiss("join")
    }
  }
  return el
}

function joinFailure(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.unreachable) return "The relay cannot be reached right now. Check your connection and try again; your name is kept."
    if (error.status === 410) return `This invite can no longer be used: ${error.message}. Ask the person who invited you for a new link.`
    if (error.status === 404) return "This invite link is not valid: no invite has this secret, or the workspace does not exist. Ask for a new link."
    if (error.status === 401) return `The relay did not accept this browser's key: ${error.message}. Check that this device's clock is right.`
    return `The relay refused: ${error.message}.`
  }
  return (error as Error)?.message ?? String(error)
}
