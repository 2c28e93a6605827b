// A small promise wrapper over one IndexedDB database of rapport's own
// (keys, the cached workspace list, acknowledged heads), separate from the
// automerge-repo document store.

const DB_NAME = "rapport"
const STORE = "kv"

/** Why local storage failed, in words a person can act on. */
export class StorageError extends Error {
  constructor(
    message: string,
    readonly kind: "unavailable" | "full" | "failed",
  ) {
    super(message)
  }
}

export function storageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error
  const name = (error as { name?: string } | null)?.name
  if (name === "QuotaExceededError") {
    return new StorageError(
      "This device's storage for rapport is full. Free some space (or allow more for this site); your edits stay on this page until then.",
      "full",
    )
  }
  if (name === "InvalidStateError" || name === "SecurityError" || name === "UnknownError") {
    return new StorageError(
      "This browser does not let rapport keep data on this device (a private window, or site data turned off). You can look around, but nothing will be kept when you close the page.",
      "unavailable",
    )
  }
  return new StorageError(`Saving on this device failed: ${String((error as Error)?.message ?? error)}`, "failed")
}

let opened: Promise<IDBDatabase> | null = null

function open(): Promise<IDBDatabase> {
  if (opened) return opened
  opened = new Promise((resolve, reject) => {
    if (typeof indexedDB === "undefined") {
      reject(storageError({ name: "InvalidStateError" }))
      return
    }
    let request: IDBOpenDBRequest
    try {
      request = indexedDB.open(DB_NAME, 1)
    } catch (e) {
      reject(storageError(e))
      return
    }
    request.onupgradeneeded = () => request.result.createObjectStore(STORE)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(storageError(request.error))
    request.onblocked = () => reject(new StorageError("rapport is open in another tab that holds its storage; close it and reload.", "failed"))
  })
  opened.catch(() => {
    opened = null
  })
  return opened
}

function run<T>(mode: IDBTransactionMode, body: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return open().then(
    db =>
      new Promise<T>((resolve, reject) => {
        const tx = db.transaction(STORE, mode)
        const request = body(tx.objectStore(STORE))
        tx.oncomplete = () => resolve(request.result)
        tx.onerror = () => reject(storageError(tx.error ?? request.error))
        tx.onabort = () => reject(storageError(tx.error ?? request.error))
      }),
  )
}

export function get<T>(key: string): Promise<T | undefined> {
  return run("readonly", store => store.get(key) as IDBRequest<T | undefined>)
}

export function put(key: string, value: unknown): Promise<void> {
  return run("readwrite", store => store.put(value, key)).then(() => undefined)
}

export function remove(key: string): Promise<void> {
  return run("readwrite", store => store.delete(key)).then(() => undefined)
}

/** Whether IndexedDB can be opened at all. */
export async function available(): Promise<StorageError | null> {
  try {
    await open()
    return null
  } catch (e) {
    return storageError(e)
  }
}
