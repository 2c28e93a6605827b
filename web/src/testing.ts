// Hooks for the browser tests (tests/driver.mjs): exposed on
// `window.rapport` only when the page was opened for tests
// (localStorage `rapport-test` = "1"). Nothing here changes behaviour.

export function exposeForTests(parts: Record<string, unknown>): void {
  let enabled = false
  try {
    enabled = localStorage.getItem("rapport-test") === "1"
  } catch {
    enabled = false
  }
  if (!enabled) return
  const w = window as unknown as { rapport?: Record<string, unknown> }
  w.rapport = { ...(w.rapport ?? {}), ...parts }
}
