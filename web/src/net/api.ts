// The relay's HTTP API, called with a fresh token each time. The web app is
// served by the relay itself, so every URL is on this page's origin.

import type { Identity } from "../identity/keys"
import { mintToken } from "../identity/token"

// The request and answer types are generated from the Rust crate
// rapport-model (one source for the API's shapes).
import type {
  DocumentEntry,
  InviteCreated,
  InviteEntry,
  Level,
  MemberEntry,
  Person,
  RelayInfo,
  Role,
  WorkspaceSummary,
} from "../generated/model"

export type { DocumentEntry, Level, Person, RelayInfo, Role, WorkspaceSummary }
export type Member = MemberEntry
export type InviteSummary = InviteEntry
export type CreatedInvite = InviteCreated

/** A call that did not succeed: refused by the relay, or never answered. */
export class ApiError extends Error {
  constructor(
    message: string,
    /** The HTTP status of a refusal; 0 when the relay could not be reached. */
    readonly status: number,
  ) {
    super(message)
  }

  get unreachable(): boolean {
    return this.status === 0
  }
}

/** Sends a request; maps every failure to an ApiError. */
async function request(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<unknown> {
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? headers : { ...headers, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    })
  } catch {
    throw new ApiError("The relay cannot be reached right now.", 0)
  }
  const text = await response.text().catch(() => "")
  let value: unknown = null
  try {
    value = text ? JSON.parse(text) : null
  } catch {
    value = null
  }
  if (!response.ok) {
    const said = (value as { error?: unknown } | null)?.error
    const message = typeof said === "string" ? said : `the relay answered ${response.status}`
    // A proxy's "bad gateway" means the relay behind it is down.
    throw new ApiError(message, response.status === 502 || response.status === 504 ? 0 : response.status)
  }
  return value
}

export async function relayInfo(): Promise<RelayInfo> {
  return (await request("GET", "/api/info", {})) as RelayInfo
}

export class Api {
  constructor(
    private readonly identity: Identity,
    readonly relayId: string,
  ) {}

  async token(): Promise<string> {
    return mintToken(this.identity, this.relayId)
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.token()
    return (await request(method, path, { Authorization: `Bearer ${token}` }, body)) as T
  }

  async workspaces(): Promise<WorkspaceSummary[]> {
    return (await this.call<{ workspaces: WorkspaceSummary[] }>("GET", "/api/workspaces")).workspaces
  }

  async createWorkspace(name: string, memberName: string): Promise<WorkspaceSummary> {
    return this.call("POST", "/api/workspaces", { name, member_name: memberName })
  }

  async documents(ws: string): Promise<DocumentEntry[]> {
    return (await this.call<{ documents: DocumentEntry[] }>("GET", `/api/workspaces/${enc(ws)}/documents`)).documents
  }

  async addDocuments(ws: string, documents: { id: string; thread_of?: string | null }[]): Promise<void> {
    await this.call("POST", `/api/workspaces/${enc(ws)}/documents`, { documents })
  }

  /** Every member's key and name; any member may ask. */
  async people(ws: string): Promise<Person[]> {
    return (await this.call<{ people: Person[] }>("GET", `/api/workspaces/${enc(ws)}/people`)).people
  }

  async members(ws: string): Promise<Member[]> {
    return (await this.call<{ members: Member[] }>("GET", `/api/workspaces/${enc(ws)}/members`)).members
  }

  async removeMember(ws: string, key: string): Promise<void> {
    await this.call("DELETE", `/api/workspaces/${enc(ws)}/members/${enc(key)}`)
  }

  async invites(ws: string): Promise<InviteSummary[]> {
    return (await this.call<{ invites: InviteSummary[] }>("GET", `/api/workspaces/${enc(ws)}/invites`)).invites
  }

  async createInvite(
    ws: string,
    invite: { role: Role; documents: [string, Level][]; level: Level | null; expires_in_secs: number; uses: number },
  ): Promise<CreatedInvite> {
    return this.call("POST", `/api/workspaces/${enc(ws)}/invites`, invite)
  }

  async revokeInvite(ws: string, id: string): Promise<void> {
    await this.call("DELETE", `/api/workspaces/${enc(ws)}/invites/${enc(id)}`)
  }

  async redeem(workspace: string, secret: string, name: string): Promise<{ workspace: string; role: Role; key: string }> {
    return this.call("POST", "/api/invites/redeem", { workspace, secret, name })
  }

  async share(ws: string, document: string, member: string, access: Level): Promise<void> {
    await this.call("POST", `/api/workspaces/${enc(ws)}/shares`, { document, member, access })
  }

  async unshare(ws: string, document: string, member: string): Promise<void> {
    await this.call("DELETE", `/api/workspaces/${enc(ws)}/shares`, { document, member })
  }
}

function enc(part: string): string {
  return encodeURIComponent(part)
}
