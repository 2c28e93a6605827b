// The views for staff and admins: customers, tasks, the dashboard, and
// people (members, invites, sharing).

import type { App, View } from "../app/context"
import { placeholder } from "./shell"
import { customersView, customerView } from "./customers"
import { tasksView, taskView } from "./tasks"
import { dashboardView } from "./dashboard"
import { peopleView } from "./people"

export async function routeStaffView(app: App, section: string, id: string | undefined): Promise<View | null> {
  const ws = app.workspace!
  if (!ws.isStaff) return { el: placeholder("Not available", "This part of the workspace is for its staff.") }
  switch (section) {
    case "customers":
      return customersView(app)
    case "c":
      return id ? customerView(app, id) : null
    case "tasks":
      return tasksView(app)
    case "t":
      return id ? taskView(app, id) : null
    case "dashboard":
      return dashboardView(app)
    case "invites":
      return ws.isAdmin ? peopleView(app) : { el: placeholder("Not available", "Only admins manage people and invites.") }
    default:
      return null
  }
}
