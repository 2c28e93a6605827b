// Builds web/dist: index.html, and under assets/ the content-hashed
// JavaScript, CSS, automerge .wasm and license texts.
//
// RAPPORT_NO_MINIFY=1 builds a readable bundle for profiling (never commit it).
//
// Deterministic: the same sources and the same installed packages
// (`npm ci` from package-lock.json) give the same bytes, so CI can rebuild
// and diff. No timestamps, no absolute paths in the output.
import * as esbuild from "esbuild"
import { createHash } from "node:crypto"
import { rmSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = dirname(fileURLToPath(import.meta.url))
const dist = join(root, "dist")

rmSync(dist, { recursive: true, force: true })
mkdirSync(join(dist, "assets"), { recursive: true })

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: "src/main.ts", style: "src/style.css" },
  outdir: dist,
  entryNames: "assets/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  publicPath: "/",
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  platform: "browser",
  minify: process.env.RAPPORT_NO_MINIFY !== "1",
  sourcemap: false,
  legalComments: "linked",
  charset: "utf8",
  loader: { ".wasm": "file" },
  define: { "process.env.NODE_ENV": '"production"' },
  metafile: true,
  plugins: [spansForTheEditorBinding()],
  logLevel: "warning",
})

// The full automerge entries inline the wasm as base64 (2.5 MB more):
// everything must import the slim ones, which load the .wasm by URL.
const fat = Object.keys(result.metafile.inputs).filter(path => /fullfat/.test(path))
if (fat.length > 0) throw new Error(`full automerge entries bundled: ${fat.join(", ")}`)

/**
 * Points @automerge/prosemirror's automerge imports at src/editor/spans.ts,
 * which keeps the body's spans per document state (see that file).
 */
function spansForTheEditorBinding() {
  return {
    name: "rapport-spans",
    setup(build) {
      build.onResolve({ filter: /^@automerge\/automerge\/slim$/ }, args => {
        if (!args.importer.includes("/node_modules/@automerge/prosemirror/")) return undefined
        return { path: join(root, "src/editor/spans.ts") }
      })
    },
  }
}

const outputs = Object.entries(result.metafile.outputs)
const find = (entry, ext) => {
  const hit = outputs.find(([path, out]) => out.entryPoint === entry && path.endsWith(ext))
  if (!hit) throw new Error(`no output for ${entry}`)
  return "/" + hit[0].slice("dist/".length)
}
const script = find("src/main.ts", ".js")
const style = find("src/style.css", ".css")

const html = readFileSync(join(root, "src/index.html"), "utf8")
  .replace("%SCRIPT%", script)
  .replace("%STYLE%", style)
writeFileSync(join(dist, "index.html"), html)

// The service worker, served at /sw.js (its scope must be the whole site),
// with the assets to keep for offline opening and a cache name that
// changes whenever they do.
const assets = outputs
  .map(([path]) => "/" + path.slice("dist/".length))
  .filter(path => path.startsWith("/assets/") && !path.endsWith(".LEGAL.txt"))
  .sort()
const cache = "rapport-app-" + createHash("sha256").update(html).update(assets.join("\n")).digest("hex").slice(0, 16)
const sw = readFileSync(join(root, "src/sw.js"), "utf8")
  .replace('"%CACHE%"', JSON.stringify(cache))
  .replace("%ASSETS%", JSON.stringify(assets))
writeFileSync(join(dist, "sw.js"), sw)

const sizes = outputs
  .map(([path, out]) => `${basename(path)} ${out.bytes}`)
  .sort()
console.log(sizes.join("\n"))
