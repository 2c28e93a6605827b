// rapport's service worker: keeps the app itself (index.html and the
// hashed assets) on this device, so the app opens with the relay down.
// Documents are kept by the app in IndexedDB; the API and /sync always go
// to the network. The build writes the asset list and the cache name.
const CACHE = "rapport-app-c2445daa61dc86e0"
const ASSETS = ["/assets/app-5D7UACB6.js","/assets/automerge-X4OLCNJ7.wasm","/assets/style-K5EXOGAK.css"]
const SHELL = "/"

self.addEventListener("install", event => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(cache => cache.addAll([SHELL, ...ASSETS]))
      .then(() => self.skipWaiting()),
  )
})

self.addEventListener("activate", event => {
  event.waitUntil(
    caches
      .keys()
      .then(keys => Promise.all(keys.filter(key => key.startsWith("rapport-app-") && key !== CACHE).map(key => caches.delete(key))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener("fetch", event => {
  const request = event.request
  if (request.method !== "GET") return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  if (request.mode === "navigate" && (url.pathname === "/" || url.pathname === "/join" || url.pathname === "/index.html")) {
    // The page: the network's when it answers, the kept one when it does not.
    event.respondWith(
      fetch(request)
        .then(response => {
          if (response.ok) {
            const copy = response.clone()
            void caches.open(CACHE).then(cache => cache.put(SHELL, copy))
          }
          return response
        })
        .catch(() => caches.match(SHELL).then(kept => kept ?? Response.error())),
    )
    return
  }
  if (url.pathname.startsWith("/assets/")) {
    // Hashed names never change: the kept copy is the right one.
    event.respondWith(caches.match(request).then(kept => kept ?? fetch(request)))
  }
})
