// Reading and writing values as the Rust model does: strings are scalar
// strings (automerge's ImmutableString: a JS string would become a
// collaborative text object, which the Rust side does not read as a
// String), dates are `YYYY-MM-DD`, missing values read as their default.

import * as A from "@automerge/automerge/slim"

export type Scalar = A.ImmutableString

/** A scalar string for the Rust side. */
export function imm(text: string): A.ImmutableString {
  return new A.ImmutableString(text)
}

/** A scalar string, or null for an empty optional. */
export function immOrNull(text: string | null | undefined): A.ImmutableString | null {
  return text ? new A.ImmutableString(text) : null
}

/** Whatever string a value holds (scalar or text), or "". */
export function str(value: unknown): string {
  if (typeof value === "string") return value
  if (value && A.isImmutableString(value)) return value.toString()
  return ""
}

export function optStr(value: unknown): string | null {
  const text = str(value)
  return text === "" ? null : text
}

export function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0
}

export function bool(value: unknown): boolean {
  return value === true
}

export function strList(value: unknown): string[] {
  return Array.isArray(value) ? value.map(str).filter(s => s !== "") : []
}

export function strMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) out[k] = str(v)
  }
  return out
}

/** A `YYYY-MM-DD` date, or null if the value is not one. */
export function date(value: unknown): string | null {
  const text = str(value)
  return isDate(text) ? text : null
}

export function isDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false
  const [y, m, d] = text.split("-").map(Number)
  const day = new Date(Date.UTC(y, m - 1, d))
  return day.getUTCFullYear() === y && day.getUTCMonth() === m - 1 && day.getUTCDate() === d
}

/** Today in this browser's time zone, as `YYYY-MM-DD`. */
export function today(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0")
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`
}
