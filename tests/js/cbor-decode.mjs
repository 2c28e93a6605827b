// Decode CBOR frames exactly as automerge-repo's WebSocket adapters do, and
// print what the decoder yields in a lossless, canonical JSON form.
//
// Input (stdin): one lowercase or uppercase hex string per line, each one
// CBOR-encoded message (one WebSocket frame payload). An empty line is an
// empty frame.
// Output (stdout): exactly one JSON line per input line, in order.
//
// The decoder is `cbor.decode` from `@automerge/automerge-repo/slim`
// (dist/helpers/cbor.js, a thin wrapper around cbor-x's default `decode`),
// imported the same way as WebSocketClientAdapter.js and
// WebSocketServerAdapter.js of @automerge/automerge-repo-network-websocket
// import it. The input is handed over as a fresh Uint8Array, as the client
// adapter does (`cbor.decode(new Uint8Array(messageBytes))`).
//
// Canonical form of a decoded value:
//   string, boolean, null        -> the same JSON value
//   number (finite, not -0)      -> JSON number (JS has one number type: an
//                                   integral float64 prints as an integer)
//   NaN, Infinity, -Infinity, -0 -> {"$number": "NaN" | "Infinity" | "-Infinity" | "-0"}
//   bigint                       -> {"$bigint": "<decimal>"}
//   undefined                    -> {"$undefined": true}
//   Uint8Array / Buffer          -> {"$bytes": "<lowercase hex>"}
//   other typed array, ArrayBuffer, DataView
//                                -> {"$typed": "<constructor name>", "$bytes": "<hex of its bytes>"}
//   array                        -> JSON array
//   plain object                 -> JSON object, keys in the object's own
//                                   order (Object.keys); a key starting with
//                                   "$" is written with one more "$" in front
//                                   so it cannot be confused with the tags here
//   Map                          -> {"$map": [[key, value], ...]}
//   Set                          -> {"$set": [value, ...]}
//   Date                         -> {"$date": <ms since epoch, as a number above>}
//   cbor-x Tag (unknown tag)     -> {"$tag": <tag number>, "$value": <value>}
//   string with lone surrogates  -> {"$utf16": [<code unit>, ...]}
//   anything else                -> {"$other": "<constructor name>", "$string": "<String(value)>"}
// A line that does not decode prints {"$error": "<message>"}.
//
// `node cbor-decode.mjs --info` prints the versions in use instead.

import { cbor } from "@automerge/automerge-repo/slim";
import { readFileSync } from "node:fs";

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function hex(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function canonical(v) {
  switch (typeof v) {
    case "undefined":
      return { $undefined: true };
    case "boolean":
      return v;
    case "string":
      if (v.isWellFormed()) return v;
      return { $utf16: Array.from({ length: v.length }, (_, i) => v.charCodeAt(i)) };
    case "number":
      if (Number.isNaN(v)) return { $number: "NaN" };
      if (v === Infinity) return { $number: "Infinity" };
      if (v === -Infinity) return { $number: "-Infinity" };
      if (Object.is(v, -0)) return { $number: "-0" };
      return v;
    case "bigint":
      return { $bigint: v.toString() };
    case "object":
      break;
    default:
      return { $other: typeof v, $string: String(v) };
  }
  if (v === null) return null;
  if (v instanceof Uint8Array && (v.constructor === Uint8Array || Buffer.isBuffer(v))) {
    return { $bytes: hex(v) };
  }
  if (ArrayBuffer.isView(v)) {
    return { $typed: v.constructor.name, $bytes: hex(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
  }
  if (v instanceof ArrayBuffer) {
    return { $typed: "ArrayBuffer", $bytes: hex(new Uint8Array(v)) };
  }
  if (Array.isArray(v)) return v.map(canonical);
  if (v instanceof Map) return { $map: Array.from(v, ([k, x]) => [canonical(k), canonical(x)]) };
  if (v instanceof Set) return { $set: Array.from(v, canonical) };
  if (v instanceof Date) return { $date: canonical(v.getTime()) };
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    const out = {};
    for (const k of Object.keys(v)) out[k.startsWith("$") ? "$" + k : k] = canonical(v[k]);
    return out;
  }
  // cbor-x yields an instance of its Tag class ({ value, tag }) for tags it
  // has no extension for.
  if (v.constructor?.name === "Tag" && "tag" in v && "value" in v) {
    return { $tag: canonical(v.tag), $value: canonical(v.value) };
  }
  return { $other: v.constructor?.name ?? "Object", $string: String(v) };
}

function decodeLine(line) {
  if (!HEX.test(line)) return { $error: "input line is not an even-length hex string" };
  try {
    return canonical(cbor.decode(new Uint8Array(Buffer.from(line, "hex"))));
  } catch (e) {
    return { $error: String(e?.message ?? e) };
  }
}

if (process.argv.includes("--info")) {
  const version = (name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
  const cborx = await import("cbor-x");
  console.log(
    JSON.stringify({
      node: process.version,
      "@automerge/automerge-repo": version("@automerge/automerge-repo"),
      "@automerge/automerge-repo-network-websocket": version("@automerge/automerge-repo-network-websocket"),
      "cbor-x": version("cbor-x"),
      cborNativeAcceleration: cborx.isNativeAccelerationEnabled,
    }),
  );
} else {
  const input = readFileSync(0, "utf8");
  const lines = input.split("\n");
  if (lines.at(-1) === "") lines.pop(); // the newline ending the last line
  const out = lines.map((l) => JSON.stringify(decodeLine(l.endsWith("\r") ? l.slice(0, -1) : l)) + "\n");
  process.stdout.write(out.join(""));
}
