// People (admins): members with their roles and shares, invites (create,
// list, revoke, copy the link), and sharing a document with a client.

import type { App, View } from "../app/context"
import { inviteUrl } from "../app/invite"
import { ApiError, type InviteSummary, type Level, type Role } from "../net/api"
import { fill, h, short, when } from "../ui/dom"
import { field, select } from "./form"

export function peopleView(app: App): View {
  const ws = app.workspace!
  const el = h("div", { class: "page" })
  const membersEl = h("section", { class: "panel" })
  const invitesEl = h("section", { class: "panel" })
  const created = h("div", { class: "created-invite", hidden: true })
  const fail = (what: string, error: unknown) =>
    app.notices.show(
      "people",
      "error",
      error instanceof ApiError && error.unreachable ? `${what}: the relay cannot be reached right now. Try again when you are online.` : `${what}: ${(error as Error).message}`,
    )

  const docs = () => ws.records("requirements")

  async function loadMembers(): Promise<void> {
    try {
      await ws.refresh()
    } catch (error) {
      if (!(error instanceof ApiError && error.unreachable)) fail("The member list could not be loaded", error)
    }
    const clients = ws.members.filter(m => m.role === "client")
    const doc = select("document", docs().map(d => d.id), docs()[0]?.id ?? "", Object.fromEntries(docs().map(d => [d.id, d.record.title])))
    const who = select("member", clients.map(c => c.key), clients[0]?.key ?? "", Object.fromEntries(clients.map(c => [c.key, c.name || short(c.key)])))
    const level = select("access", ["comment", "read", "write"], "comment")
    fill(
      membersEl,
      h("h2", {}, "Members"),
      h(
        "table",
        { class: "table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Role"), h("th", {}, "Shared"), h("th", {}))),
        h(
          "tbody",
          {},
          ws.members.map(m => {
            if (m.name) app.names.listedAs(m.key, m.name)
            return h(
              "tr",
              { "data-member": m.key },
              h("td", {}, m.name || short(m.key), m.key === app.identity.publicKey ? " (you)" : "", m.name ? h("span", { class: "muted mono key-hint", title: m.key }, ` ${short(m.key)}`) : null),
              h("td", {}, m.role),
              h("td", {}, m.role === "client" ? m.shares.map(s => `${titleOf(s.document)} (${s.access})`).join(", ") || "—" : "everything"),
              h(
                "td",
                {},
                m.role === "owner" || m.key === app.identity.publicKey
                  ? null
                  : h(
                      "button",
                      {
                        type: "button",
                        class: "link-button danger",
                        onclick: () => {
                          if (!window.confirm(`Remove ${m.name || short(m.key)} from the workspace? Their connection is closed at once; what their device already holds stays there.`)) return
                          void app.api!.removeMember(ws.id, m.key).then(loadMembers, e => fail("The member was not removed", e))
                        },
                      },
                      "Remove",
                    ),
              ),
            )
          }),
        ),
      ),
      clients.length && docs().length
        ? h(
            "form",
            {
              class: "inline-form",
              onsubmit: (e: Event) => {
                e.preventDefault()
                void app.api!
                  .share(ws.id, doc.value, who.value, level.value as Level)
                  .then(() => app.notices.show("people", "success", "Shared."))
                  .then(loadMembers, err => fail("The document was not shared", err))
              },
            },
            h("strong", {}, "Share "),
            doc,
            h("span", {}, " with "),
            who,
            h("span", {}, " to "),
            level,
            h("button", { type: "submit", class: "button-quiet" }, "Share"),
          )
        : null,
    )
  }

  function titleOf(id: string): string {
    const r = ws.loaded.get(id)?.record
    return r?.kind === "requirements" ? r.title : short(id)
  }

  async function loadInvites(): Promise<void> {
    let invites: InviteSummary[] = []
    try {
      invites = await app.api!.invites(ws.id)
    } catch (error) {
      fill(invitesEl, h("h2", {}, "Invites"), h("p", { class: "note" }, error instanceof ApiError && error.unreachable ? "Invites show when you are online." : `Invites could not be loaded: ${(error as Error).message}`))
      return
    }
    const now = Date.now()
    const state = (i: InviteSummary) => (i.revoked ? "revoked" : i.expires_at <= now ? "expired" : i.uses >= i.max_uses ? "used up" : "open")
    fill(
      invitesEl,
      h("h2", {}, "Invites"),
      inviteForm(),
      created,
      invites.length === 0
        ? h("p", { class: "note" }, "No invites yet.")
        : h(
            "table",
            { class: "table" },
            h("thead", {}, h("tr", {}, h("th", {}, "Invite"), h("th", {}, "Role"), h("th", {}, "For"), h("th", {}, "Uses"), h("th", {}, "Expires"), h("th", {}, "State"), h("th", {}))),
            h(
              "tbody",
              {},
              invites
                .sort((a, b) => b.expires_at - a.expires_at)
                .map(i =>
                  h(
                    "tr",
                    { "data-invite": i.id },
                    h("td", { class: "mono" }, i.id),
                    h("td", {}, i.role),
                    h("td", {}, i.scope.kind === "workspace" ? "whole workspace" : i.scope.documents.map(([d, l]) => `${titleOf(d)} (${l})`).join(", ")),
                    h("td", {}, `${i.uses}/${i.max_uses}`),
                    h("td", {}, when(i.expires_at)),
                    h("td", {}, state(i)),
                    h(
                      "td",
                      {},
                      state(i) === "open"
                        ? h("button", { type: "button", class: "link-button danger", onclick: () => void app.api!.revokeInvite(ws.id, i.id).then(loadInvites, e => fail("The invite was not revoked", e)) }, "Revoke")
                        : null,
                    ),
                  ),
                ),
            ),
          ),
    )
  }

  function inviteForm(): HTMLElement {
    const role = select("role", ["client", "staff", "admin"], "client")
    const doc = select("document", ["", ...docs().map(d => d.id)], docs()[0]?.id ?? "", Object.fromEntries([["", "the whole workspace"], ...docs().map(d => [d.id, d.record.title])]))
    const level = select("level", ["comment", "read", "write"], "comment")
    const days = h("input", { type: "number", min: 1, max: 365, value: 7, name: "days" })
    const uses = h("input", { type: "number", min: 1, max: 1000, value: 1, name: "uses" })
    return h(
      "form",
      {
        class: "form-grid invite-form",
        onsubmit: (e: Event) => {
          e.preventDefault()
          const documents: [string, Level][] = role.value === "client" && doc.value ? [[doc.value, level.value as Level]] : []
          void app
            .api!.createInvite(ws.id, {
              role: role.value as Role,
              documents,
              level: role.value === "client" && !doc.value ? (level.value as Level) : null,
              expires_in_secs: Math.max(1, Number(days.value) || 7) * 86400,
              uses: Math.max(1, Number(uses.value) || 1),
            })
            .then(invite => {
              showLink(inviteUrl(invite.workspace, invite.secret))
              return loadInvites()
            }, err => fail("The invite was not made", err))
        },
      },
      field("Role", role),
      field("Document", doc),
      field("Access", level),
      field("Valid for (days)", days),
      field("Uses", uses),
      h("button", { type: "submit", class: "button-primary" }, "Create invite"),
    )
  }

  function showLink(link: string): void {
    const box = h("input", { readonly: true, value: link, "aria-label": "Invite link", "data-invite-link": "" })
    created.hidden = false
    fill(
      created,
      h("p", {}, "Send this link to the person you invite. It is shown only now."),
      h(
        "div",
        { class: "inline-form" },
        box,
        h(
          "button",
          {
            type: "button",
            class: "button-quiet",
            onclick: () => {
              box.select()
              void navigator.clipboard?.writeText(link).then(
                () => app.notices.show("people", "success", "Link copied."),
                () => app.notices.show("people", "info", "Copy the selected link with Ctrl+C."),
              )
            },
          },
          "Copy link",
        ),
      ),
    )
  }

  fill(el, h("header", { class: "page-head" }, h("h1", {}, "People")), membersEl, invitesEl)
  void loadMembers()
  void loadInvites()
  return { el }
}
