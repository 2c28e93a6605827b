// What every view gets: the person, the replica, the API, the current
// workspace, names, notices, and navigation.

import type { Identity } from "../identity/keys"
import type { Api } from "../net/api"
import type { Replica } from "../replica/replica"
import type { Notices } from "../ui/notices"
import type { Names } from "./names"
import type { Workspace } from "./workspace"

export interface App {
  identity: Identity
  api: Api | null
  replica: Replica
  notices: Notices
  names: Names
  /** The workspace shown, if any. */
  workspace: Workspace | null
  navigate(route: string): void
  /** Re-renders the current route. */
  refresh(): void
}

/** Something shown in the main area; `destroy` runs when it is replaced. */
export interface View {
  el: HTMLElement
  destroy?(): void
}
