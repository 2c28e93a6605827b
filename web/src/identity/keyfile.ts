// The key file a person exports and imports, shared with the `rapport` CLI
// (`rapport init --import FILE`):
//
//   {"rapport":"identity","version":1,"name":"Ann Lee",
//    "public_key":"<base58 of 32 bytes>","secret_key":"<base58 of the 32-byte ed25519 seed>"}

import { base58, fromBase58 } from "../lib/encoding"
import { Identity } from "./keys"

export interface KeyFile {
  rapport: "identity"
  version: 1
  name: string
  public_key: string
  secret_key: string
}

/** The key file's text for `identity`. */
export async function exportKeyFile(identity: Identity): Promise<string> {
  const file: KeyFile = {
    rapport: "identity",
    version: 1,
    name: identity.name,
    public_key: identity.publicKey,
    secret_key: base58(await identity.seed()),
  }
  return JSON.stringify(file, null, 2) + "\n"
}

/** A file name that says whose key it is. */
export function keyFileName(identity: Identity): string {
  const who = identity.name.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase()
  return `rapport-key-${who || identity.publicKey.slice(0, 8)}.json`
}

/** Reads a key file; throws an Error that says what is wrong with it. */
export function parseKeyFile(text: string): { name: string; publicKey: string; seed: Uint8Array } {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new Error("This file is not a rapport key file (it is not JSON).")
  }
  const file = value as Partial<KeyFile> | null
  if (!file || typeof file !== "object" || file.rapport !== "identity") {
    throw new Error("This file is not a rapport key file.")
  }
  if (file.version !== 1) {
    throw new Error(`This key file is version ${String(file.version)}; this page reads version 1.`)
  }
  const seed = typeof file.secret_key === "string" ? fromBase58(file.secret_key) : null
  if (!seed || seed.length !== 32) throw new Error("The key file's secret key is not 32 bytes of base58.")
  const publicKey = typeof file.public_key === "string" ? file.public_key : ""
  const name = typeof file.name === "string" ? file.name : ""
  return { name, publicKey, seed }
}

/** Imports a key file's text as this browser's identity. */
export async function importKeyFile(text: string): Promise<Identity> {
  const { name, publicKey, seed } = parseKeyFile(text)
  return Identity.fromSeed(name, seed, publicKey || undefined)
}
