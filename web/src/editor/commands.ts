// Formatting commands for the requirements editor: the same ones behind the
// toolbar buttons and the keyboard shortcuts.

import { setBlockType, toggleMark } from "prosemirror-commands"
import type { MarkType, NodeType, Schema } from "prosemirror-model"
import { liftListItem, wrapInList } from "prosemirror-schema-list"
import type { Command, EditorState } from "prosemirror-state"

export type Format = "bold" | "italic" | "heading" | "paragraph" | "bullets" | "numbers" | "link"

export function markActive(state: EditorState, type: MarkType): boolean {
  const { from, $from, to, empty } = state.selection
  if (empty) return !!type.isInSet(state.storedMarks || $from.marks())
  return state.doc.rangeHasMark(from, to, type)
}

export function blockIs(state: EditorState, type: NodeType, attrs?: Record<string, unknown>): boolean {
  const parent = state.selection.$from.parent
  if (parent.type !== type) return false
  return !attrs || Object.entries(attrs).every(([k, v]) => parent.attrs[k] === v)
}

export function inList(state: EditorState, list: NodeType): boolean {
  const $from = state.selection.$from
  for (let depth = $from.depth; depth > 0; depth--) if ($from.node(depth).type === list) return true
  return false
}

/** The command for a format; `link` needs the address. */
export function command(schema: Schema, format: Format, href?: string): Command {
  const n = schema.nodes
  const m = schema.marks
  switch (format) {
    case "bold":
      return toggleMark(m.strong)
    case "italic":
      return toggleMark(m.em)
    case "heading":
      return (state, dispatch) =>
        blockIs(state, n.heading, { level: 2 }) ? setBlockType(n.paragraph)(state, dispatch) : setBlockType(n.heading, { level: 2 })(state, dispatch)
    case "paragraph":
      return setBlockType(n.paragraph)
    case "bullets":
      return (state, dispatch) => (inList(state, n.bullet_list) ? liftListItem(n.list_item)(state, dispatch) : wrapInList(n.bullet_list)(state, dispatch))
    case "numbers":
      return (state, dispatch) => (inList(state, n.ordered_list) ? liftListItem(n.list_item)(state, dispatch) : wrapInList(n.ordered_list)(state, dispatch))
    case "link":
      return (state, dispatch) => {
        if (state.selection.empty) return false
        if (!href) return toggleMark(m.link)(state, dispatch)
        if (dispatch) {
          const { from, to } = state.selection
          dispatch(state.tr.removeMark(from, to, m.link).addMark(from, to, m.link.create({ href, title: "" })))
        }
        return true
      }
  }
}

/** A link address as typed: a bare host gets https://; scripts are refused. */
export function cleanHref(text: string): string | null {
  const t = text.trim()
  if (!t) return null
  if (/^(https?:|mailto:)/i.test(t)) return t
  if (/^[a-z][a-z0-9+.-]*:/i.test(t)) return null
  return `https://${t}`
}
