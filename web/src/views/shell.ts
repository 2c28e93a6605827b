// The frame around every view: header (workspace, connection badge, the
// person), navigation, notices, and the main area.

import type { App } from "../app/context"
import type { WorkspaceSummary } from "../net/api"
import { fill, h, initials } from "../ui/dom"
import type { StatusBadge } from "../ui/status"

export interface Shell {
  el: HTMLElement
  main: HTMLElement
  setNav(route: string): void
}

export function shell(app: App, badge: StatusBadge, workspaces: WorkspaceSummary[]): Shell {
  const ws = app.workspace
  const main = h("main", { class: "content", id: "content" })
  const links: [string, string][] = ws
    ? ws.isStaff
      ? [
          ["documents", "Documents"],
          ["customers", "Customers"],
          ["tasks", "Tasks"],
          ["dashboard", "Dashboard"],
          ...(ws.isAdmin ? ([["invites", "People"]] as [string, string][]) : []),
        ]
      : [["documents", "Documents"]]
    : []
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "Sections" },
    links.map(([route, label]) => h("a", { href: `#/w/${ws!.id}/${route}`, "data-route": route }, label)),
  )
  const switcher =
    workspaces.length > 1
      ? h(
          "select",
          {
            class: "ws-switch",
            "aria-label": "Workspace",
            onchange: (e: Event) => app.navigate(`#/w/${(e.target as HTMLSelectElement).value}`),
          },
          workspaces.map(w => h("option", { value: w.id, selected: w.id === ws?.id }, w.name)),
        )
      : h("span", { class: "ws-name" }, ws?.summary.name ?? "rapport")
  const me = h("a", { class: "me", href: "#/account", title: `${app.identity.name} — your key` }, h("span", { class: "avatar avatar-me" }, initials(app.identity.name)))
  const header = h("header", { class: "topbar" }, h("a", { class: "brand", href: ws ? `#/w/${ws.id}` : "#/" }, "rapport"), switcher, h("span", { class: "spacer" }), badge.el, me)
  const el = h("div", { class: "app" }, header, nav, app.notices.el, main)
  return {
    el,
    main,
    setNav(route: string) {
      for (const a of nav.querySelectorAll("a")) a.toggleAttribute("aria-current", a.dataset.route === route)
      showCurrent(nav)
    },
  }
}

/**
 * On a phone the sections are one row that scrolls sideways: scrolls it so
 * the current section's tab is wholly in view (never the page itself).
 */
function showCurrent(nav: HTMLElement): void {
  const current = nav.querySelector<HTMLElement>("a[aria-current]")
  if (!current || nav.scrollWidth <= nav.clientWidth) return
  const tab = current.getBoundingClientRect()
  const row = nav.getBoundingClientRect()
  const margin = 8
  if (tab.left < row.left) nav.scrollLeft -= row.left - tab.left + margin
  else if (tab.right > row.right) nav.scrollLeft += tab.right - row.right + margin
}

export function placeholder(title: string, text: string): HTMLElement {
  const el = h("div", { class: "page" })
  fill(el, h("h1", {}, title), h("p", {}, text))
  return el
}
