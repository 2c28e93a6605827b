// Invite links: `http(s)://HOST/join#WORKSPACE.SECRET`, and the CLI's
// `RELAY_URL#join=WORKSPACE.SECRET` (whose relay URL may be ws://…/sync).

export interface InviteLink {
  workspace: string
  secret: string
}

/** The workspace and secret of a link's fragment (or of a whole link). */
export function parseInvite(text: string): InviteLink | null {
  const hash = text.includes("#") ? text.slice(text.indexOf("#") + 1) : text
  const fragment = hash.startsWith("join=") ? hash.slice("join=".length) : hash
  const dot = fragment.indexOf(".")
  if (dot <= 0) return null
  const workspace = decodeURIComponent(fragment.slice(0, dot))
  const secret = decodeURIComponent(fragment.slice(dot + 1))
  if (!/^ws-[1-9A-HJ-NP-Za-km-z]+$/.test(workspace) || !/^[1-9A-HJ-NP-Za-km-z]{8,}$/.test(secret)) return null
  return { workspace, secret }
}

/** The link to share for an invite, on this page's origin. */
export function inviteUrl(workspace: string, secret: string): string {
  return `${location.origin}/join#${workspace}.${secret}`
}
