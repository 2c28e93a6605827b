// Small form helpers shared by the staff views.

import { h } from "../ui/dom"

export function field(label: string, control: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), control)
}

export function select(name: string, options: readonly string[], value: string, labels?: Record<string, string>): HTMLSelectElement {
  const known = options.includes(value) ? options : [...options, value]
  return h(
    "select",
    { name },
    known.map(o => h("option", { value: o, selected: o === value }, labels?.[o] ?? o.replace(/_/g, " "))),
  )
}

export function input(name: string, value: string, type = "text"): HTMLInputElement {
  return h("input", { name, value, type })
}

/** Calls `save` when a control's value is committed (change event). */
export function onCommit(control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, save: (value: string) => void): void {
  control.addEventListener("change", () => save(control.value))
}
