// The requirements `body`: an automerge text object in automerge's rich
// text schema: block markers (paragraph, heading with a level, list items)
// split the text into blocks, and marks (`strong`, `em`, `link`) lie over
// ranges. This is what @automerge/prosemirror reads and writes.
//
// Bodies written by the `rapport` CLI today are plain text: lines, with
// `## ` before a heading. `toBlocks` turns such a body into blocks (in one
// change) the first time someone who may write opens it in the browser.

import * as A from "@automerge/automerge/slim"
import { imm, str } from "./values"
import { newThread, writeHeader, type RecordDoc } from "./records"

export const BODY: A.Prop[] = ["body"]

/** The BRD template's sections, as the CLI's `--template brd`. */
export const BRD_SECTIONS = ["Scope", "Business drivers", "Financial details", "Timeline and deadlines"]

type Block = { type: "heading"; level: number } | { type: "paragraph" } | { type: "unordered-list-item" } | { type: "ordered-list-item" }

function blockSpan(block: Block): A.Span {
  const attrs = block.type === "heading" ? { level: block.level } : {}
  return { type: "block", value: { type: imm(block.type), parents: [], attrs } }
}

/** Whether the body has block markers (the rich text schema). */
export function hasBlocks(doc: A.Doc<unknown>): boolean {
  const body = (doc as RecordDoc).body
  if (typeof body !== "string") return false
  if (body.length === 0) return false
  return A.spans(doc, BODY).some(span => span.type === "block")
}

/** Whether the body is plain text that `toBlocks` would convert. */
export function needsBlocks(doc: A.Doc<unknown>): boolean {
  const body = (doc as RecordDoc).body
  return typeof body === "string" && !hasBlocks(doc)
}

/** One line of plain text as a block and its text. */
function lineBlock(line: string): [Block, string] {
  const heading = /^(#{1,6})\s+(.*)$/.exec(line)
  if (heading) return [{ type: "heading", level: heading[1].length }, heading[2]]
  const bullet = /^[-*]\s+(.*)$/.exec(line)
  if (bullet) return [{ type: "unordered-list-item" }, bullet[1]]
  const numbered = /^\d+[.)]\s+(.*)$/.exec(line)
  if (numbered) return [{ type: "ordered-list-item" }, numbered[1]]
  return [{ type: "paragraph" }, line]
}

/** The spans for plain text: one block per line. */
export function spansOfLines(text: string): A.Span[] {
  const lines = text.replace(/\n+$/, "").split("\n")
  const spans: A.Span[] = []
  for (const line of lines) {
    const [block, value] = lineBlock(line)
    spans.push(blockSpan(block))
    if (value) spans.push({ type: "text", value })
  }
  return spans
}

/** Converts a plain-text body into blocks, inside a change. */
export function toBlocks(doc: RecordDoc): void {
  const text = str(doc.body)
  A.updateSpans(doc as A.Doc<unknown>, BODY, spansOfLines(text))
}

/** A new requirements document from the BRD template (or empty). */
export function newRequirements(doc: RecordDoc, title: string, customer: string | null, template: boolean): void {
  writeHeader(doc, "requirements")
  doc.title = imm(title)
  doc.customer = customer ? imm(customer) : null
  doc.body = ""
  const text = template ? BRD_SECTIONS.map(s => `## ${s}\n\n`).join("") : "\n"
  A.updateSpans(doc as A.Doc<unknown>, BODY, spansOfLines(text))
}

/** The body as plain lines: each block on its own line, headings as `## `. */
export function bodyText(doc: A.Doc<unknown>): string {
  const body = (doc as RecordDoc).body
  if (typeof body !== "string") return ""
  if (!hasBlocks(doc)) return body
  const lines: string[] = []
  for (const span of A.spans(doc, BODY)) {
    if (span.type === "block") {
      const type = str(span.value.type)
      const attrs = (span.value.attrs ?? {}) as Record<string, unknown>
      const prefix =
        type === "heading" ? "#".repeat(Number(attrs.level) || 1) + " " : type === "unordered-list-item" ? "- " : type === "ordered-list-item" ? "1. " : ""
      lines.push(prefix)
    } else {
      if (lines.length === 0) lines.push("")
      lines[lines.length - 1] += span.value
    }
  }
  return lines.join("\n")
}

export interface MarkRun {
  text: string
  marks: Record<string, unknown>
}

/** The text runs of the body with their marks (blocks left out). */
export function markRuns(doc: A.Doc<unknown>): MarkRun[] {
  const body = (doc as RecordDoc).body
  if (typeof body !== "string") return []
  return A.spans(doc, BODY)
    .filter((span): span is { type: "text"; value: string; marks?: A.MarkSet } => span.type === "text")
    .map(span => ({ text: span.value, marks: { ...(span.marks ?? {}) } }))
}

export { newThread }
