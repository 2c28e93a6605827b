// automerge-repo's IndexedDB storage, wrapped so that a failure (storage
// full, storage refused in a private window) is reported to the page
// instead of vanishing as an unhandled rejection. Edits stay in memory and
// keep syncing; the page says that they are not kept on this device.

import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo/slim"
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb"
import { storageError, type StorageError } from "../lib/idb"

export class ReportingStorage implements StorageAdapterInterface {
  private readonly inner = new IndexedDBStorageAdapter("rapport-documents", "documents")
  /** Documents the relay removed: a save still on its way (a sync state) is dropped. */
  private readonly forgotten = new Set<string>()

  constructor(private readonly report: (error: StorageError) => void) {}

  private fail(error: unknown): void {
    this.report(storageError(error))
  }

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    try {
      return await this.inner.load(key)
    } catch (e) {
      this.fail(e)
      return undefined
    }
  }

  /** Removes everything stored of document `id`, now and for the rest of this session. */
  async forget(id: string): Promise<void> {
    this.forgotten.add(id)
    await this.removeRange([id])
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    if (this.forgotten.has(key[0])) return
    try {
      await this.inner.save(key, data)
    } catch (e) {
      this.fail(e)
    }
  }

  async remove(key: StorageKey): Promise<void> {
    try {
      await this.inner.remove(key)
    } catch (e) {
      this.fail(e)
    }
  }

  async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    try {
      return await this.inner.loadRange(prefix)
    } catch (e) {
      this.fail(e)
      return []
    }
  }

  async removeRange(prefix: StorageKey): Promise<void> {
    try {
      await this.inner.removeRange(prefix)
    } catch (e) {
      this.fail(e)
    }
  }
}
