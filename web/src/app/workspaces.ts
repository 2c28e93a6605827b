// The list of this person's workspaces, kept locally so the app opens
// offline, refreshed from the relay when it answers.

import * as idb from "../lib/idb"
import type { Api, WorkspaceSummary } from "../net/api"

const KEY = "workspaces"

export async function keptWorkspaces(): Promise<WorkspaceSummary[]> {
  return (await idb.get<WorkspaceSummary[]>(KEY).catch(() => undefined)) ?? []
}

export async function keepWorkspaces(list: WorkspaceSummary[]): Promise<void> {
  await idb.put(KEY, list).catch(() => undefined)
}

/** Asks the relay; throws ApiError when it cannot be reached. */
export async function fetchWorkspaces(api: Api): Promise<WorkspaceSummary[]> {
  const list = await api.workspaces()
  await keepWorkspaces(list)
  return list
}

const CURRENT = "current-workspace"

export function currentWorkspace(): string | null {
  return localStorage.getItem(CURRENT)
}

export function setCurrentWorkspace(id: string): void {
  localStorage.setItem(CURRENT, id)
}
