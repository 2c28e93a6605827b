// The comment thread beside a document: comments and replies, @mentions of
// members, resolve and reopen. Drafts are kept in sessionStorage, so a
// failed send or a reload loses nothing typed.

import type { App } from "../app/context"
import type { Loaded } from "../app/workspace"
import { addComment, newCommentId, newThread, setResolved, type Comment, type RecordDoc } from "../model/records"
import { colorOf, fill, h, initials, when } from "../ui/dom"

export interface CommentsOptions {
  record: string
  /** Whether this person may write on the thread (comment access or more). */
  mayComment: boolean | "unknown"
}

export class CommentsPanel {
  readonly el = h("section", { class: "comments", "aria-label": "Comments" })
  private showResolved = false
  private replyingTo: string | null = null
  private unsubscribe: () => void
  private threads: Loaded[] = []

  constructor(
    private readonly app: App,
    private readonly options: CommentsOptions,
  ) {
    this.unsubscribe = app.workspace!.onChange(() => this.load())
    void this.load()
  }

  destroy(): void {
    this.unsubscribe()
  }

  private async load(): Promise<void> {
    const ws = this.app.workspace!
    const ids = ws.threadsOf(this.options.record)
    const opened = await Promise.all(ids.map(id => ws.open(id)))
    this.threads = opened.filter((l): l is Loaded => l !== null)
    this.render()
  }

  /** Every comment of every thread of the record, oldest first. */
  comments(): Comment[] {
    const all: Comment[] = []
    for (const t of this.threads) if (t.record?.kind === "thread") all.push(...t.record.comments)
    for (const c of all) if (c.author && c.author_name) this.app.names.learn(c.author, c.author_name)
    return all.sort((a, b) => a.at - b.at || a.id.localeCompare(b.id))
  }

  private render(): void {
    const active = document.activeElement
    const typing = active instanceof HTMLTextAreaElement && this.el.contains(active)
    if (typing) return this.renderListOnly()
    const comments = this.comments()
    const open = comments.filter(c => !c.resolved && !c.reply_to).length
    fill(
      this.el,
      h("header", { class: "comments-head" }, h("h2", {}, "Comments"), h("span", { class: "count", "data-open-comments": open }, open === 1 ? "1 open" : `${open} open`)),
      h("div", { class: "comment-list" }),
      this.composer(null),
    )
    this.renderListOnly()
  }

  private renderListOnly(): void {
    const list = this.el.querySelector(".comment-list")
    if (!list) return
    const comments = this.comments()
    const known = new Set(comments.map(c => c.id))
    const roots = comments.filter(c => !c.reply_to || !known.has(c.reply_to))
    const resolved = roots.filter(c => c.resolved)
    const shown = roots.filter(c => !c.resolved || this.showResolved)
    fill(
      list,
      shown.length === 0 ? h("p", { class: "empty" }, comments.length ? "No open comments." : "No comments yet. Ask a question or leave a note.") : null,
      shown.map(c => this.commentEl(c, comments)),
      resolved.length
        ? h(
            "button",
            {
              type: "button",
              class: "link-button",
              onclick: () => {
                this.showResolved = !this.showResolved
                this.render()
              },
            },
            this.showResolved ? "Hide resolved" : `Show resolved (${resolved.length})`,
          )
        : null,
    )
  }

  private commentEl(comment: Comment, all: Comment[]): HTMLElement {
    const replies = all.filter(c => c.reply_to === comment.id)
    // The author is the key the comment's writer names. A comment whose
    // writer names no key has an unknown author; its `author_name` is only
    // what the writer says of itself, shown when the member list does not
    // name that key.
    const name = comment.author ? this.app.names.of(comment.author) : "Unknown"
    const may = this.options.mayComment !== false
    // A client resolves only their own comments; staff resolve any.
    const mayResolve = may && (comment.author === this.app.identity.publicKey || this.app.workspace!.isStaff)
    return h(
      "article",
      { class: `comment${comment.resolved ? " resolved" : ""}`, "data-comment": comment.id },
      h(
        "header",
        {},
        avatar(name, comment.author),
        h("strong", { class: "author" }, name),
        h("time", { datetime: new Date(comment.at).toISOString() }, when(comment.at)),
        comment.resolved ? h("span", { class: "tag" }, "Resolved") : null,
      ),
      h("p", { class: "comment-body" }, ...this.bodyWithMentions(comment)),
      may
        ? h(
            "div",
            { class: "comment-actions" },
            comment.reply_to ? null : h("button", { type: "button", class: "link-button", "data-action": "reply", onclick: () => this.startReply(comment.id) }, "Reply"),
            comment.reply_to || !mayResolve
              ? null
              : h(
                  "button",
                  { type: "button", class: "link-button", "data-action": comment.resolved ? "reopen" : "resolve", onclick: () => void this.resolve(comment.id, !comment.resolved) },
                  comment.resolved ? "Reopen" : "Resolve",
                ),
          )
        : null,
      replies.length ? h("div", { class: "replies" }, replies.map(r => this.commentEl(r, all))) : null,
      this.replyingTo === comment.id ? this.composer(comment.id) : null,
    )
  }

  private bodyWithMentions(comment: Comment): (string | HTMLElement)[] {
    const parts: (string | HTMLElement)[] = []
    const names = comment.mentions.map(key => this.app.names.of(key, false)).filter(n => n)
    if (names.length === 0) return [comment.body]
    const pattern = new RegExp(`(@(?:${names.map(escape).join("|")}))`, "g")
    for (const piece of comment.body.split(pattern)) {
      parts.push(piece.startsWith("@") && names.includes(piece.slice(1)) ? h("span", { class: "mention" }, piece) : piece)
    }
    return parts
  }

  private startReply(id: string): void {
    this.replyingTo = this.replyingTo === id ? null : id
    this.render()
    ;(this.el.querySelector(`[data-comment="${id}"] textarea`) as HTMLTextAreaElement | null)?.focus()
  }

  private composer(replyTo: string | null): HTMLElement {
    if (this.options.mayComment === false) {
      return replyTo ? h("span") : h("p", { class: "note" }, "You can read the comments on this document but not add any.")
    }
    const key = `rapport-draft:${this.options.record}:${replyTo ?? ""}`
    const area = h("textarea", {
      rows: replyTo ? 2 : 3,
      placeholder: replyTo ? "Write a reply…" : "Add a comment… (type @ to mention someone)",
      "aria-label": replyTo ? "Reply" : "New comment",
      "data-composer": replyTo ?? "new",
    })
    area.value = sessionStorage.getItem(key) ?? ""
    const suggestions = h("div", { class: "mention-suggestions", hidden: true })
    area.addEventListener("input", () => {
      sessionStorage.setItem(key, area.value)
      this.suggest(area, suggestions)
    })
    area.addEventListener("keydown", event => {
      if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) void this.submit(area, replyTo, key)
    })
    return h(
      "form",
      {
        class: "composer",
        onsubmit: (event: Event) => {
          event.preventDefault()
          void this.submit(area, replyTo, key)
        },
      },
      area,
      suggestions,
      h(
        "div",
        { class: "composer-actions" },
        replyTo ? h("button", { type: "button", class: "button-quiet", onclick: () => this.startReply(replyTo) }, "Cancel") : null,
        h("button", { type: "submit", class: "button-primary" }, replyTo ? "Reply" : "Comment"),
      ),
    )
  }

  private suggest(area: HTMLTextAreaElement, box: HTMLElement): void {
    const before = area.value.slice(0, area.selectionStart)
    const match = /@([\p{L}\p{N} .'-]{0,30})$/u.exec(before)
    const people = this.app.names.known().filter(p => p.key !== this.app.identity.publicKey)
    const hits = match ? people.filter(p => p.name.toLowerCase().startsWith(match[1].toLowerCase())).slice(0, 5) : []
    box.hidden = hits.length === 0
    fill(
      box,
      hits.map(p =>
        h(
          "button",
          {
            type: "button",
            onclick: () => {
              const start = before.length - match![0].length
              area.value = `${area.value.slice(0, start)}@${p.name} ${area.value.slice(area.selectionStart)}`
              area.dispatchEvent(new Event("input"))
              area.focus()
              box.hidden = true
            },
          },
          p.name,
        ),
      ),
    )
  }

  /** The keys of the people `text` mentions as @Name or @KEY. */
  private mentions(text: string): string[] {
    const keys = new Set<string>()
    for (const p of this.app.names.known()) if (text.includes(`@${p.name}`)) keys.add(p.key)
    for (const m of text.matchAll(/@([1-9A-HJ-NP-Za-km-z]{32,44})/g)) keys.add(m[1])
    return [...keys]
  }

  async submit(area: HTMLTextAreaElement, replyTo: string | null, draftKey: string): Promise<void> {
    const text = area.value.trim()
    if (!text) return
    try {
      await this.add(text, replyTo)
      sessionStorage.removeItem(draftKey)
      area.value = ""
      this.replyingTo = null
      ;(document.activeElement as HTMLElement | null)?.blur()
      this.render()
    } catch (error) {
      this.app.notices.show("comment", "error", `Your comment was not added: ${(error as Error).message} It is still in the box.`)
    }
  }

  /** Adds a comment (to the record's first thread, made if there is none). */
  async add(text: string, replyTo: string | null): Promise<string> {
    const me = this.app.identity
    const taken = new Set(this.comments().map(c => c.id))
    const comment: Comment = {
      id: newCommentId(taken),
      author: me.publicKey,
      author_name: me.name,
      at: Date.now(),
      body: text,
      mentions: this.mentions(text),
      reply_to: replyTo,
      resolved: false,
    }
    const ws = this.app.workspace!
    const first = this.threads[0]
    if (first) {
      this.app.replica.change(first.handle, doc => addComment(doc as RecordDoc, comment))
    } else {
      await ws.create(doc => {
        newThread(doc, this.options.record)
        addComment(doc, comment)
      }, this.options.record)
      await this.load()
    }
    return comment.id
  }

  async resolve(id: string, resolved: boolean): Promise<void> {
    for (const t of this.threads) {
      if (t.record?.kind === "thread" && t.record.comments.some(c => c.id === id)) {
        this.app.replica.change(t.handle, doc => void setResolved(doc as RecordDoc, id, resolved))
      }
    }
  }
}

function avatar(name: string, key: string): HTMLElement {
  const el = h("span", { class: "avatar", "aria-hidden": "true" }, initials(name))
  el.style.backgroundColor = colorOf(key)
  return el
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
}

export { avatar }
