// A person's ed25519 key, made in the browser.
//
// The signing key is a non-extractable WebCrypto CryptoKey kept in
// IndexedDB: page scripts can sign with it but never read it. So that the
// person can still export the key (to use it on another device or with the
// `rapport` CLI), the 32-byte seed is kept wrapped: encrypted with AES-GCM
// under a second non-extractable key, and decrypted only when the person
// asks to export.

import { base58, randomBytes } from "../lib/encoding"
import * as idb from "../lib/idb"

/** The DER prefix of a PKCS#8 ed25519 private key; the 32-byte seed follows. */
const PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
])
const IDENTITY_KEY = "identity"
const DEVICE_KEY = "device"
/** Bytes that tell this browser's actor ids from the person's other devices. */
const DEVICE_BYTES = 8

interface StoredIdentity {
  name: string
  publicKey: string
  signingKey: CryptoKey
  wrapKey: CryptoKey
  wrappedSeed: ArrayBuffer
  iv: Uint8Array
}

/** The identity of the person using this browser. */
export class Identity {
  private constructor(
    private stored: StoredIdentity,
    readonly device: Uint8Array,
  ) {}

  get name(): string {
    return this.stored.name
  }

  /** The base58 public key: who this person is. */
  get publicKey(): string {
    return this.stored.publicKey
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const signature = await crypto.subtle.sign({ name: "Ed25519" }, this.stored.signingKey, data as BufferSource)
    return new Uint8Array(signature)
  }

  async rename(name: string): Promise<void> {
    this.stored = { ...this.stored, name: cleanName(name) }
    await idb.put(IDENTITY_KEY, this.stored)
  }

  /** The 32-byte seed, unwrapped for an export the person asked for. */
  async seed(): Promise<Uint8Array> {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: this.stored.iv as BufferSource },
      this.stored.wrapKey,
      this.stored.wrappedSeed,
    )
    return new Uint8Array(plain)
  }

  /** The identity kept in this browser, if any. */
  static async load(): Promise<Identity | null> {
    const stored = await idb.get<StoredIdentity>(IDENTITY_KEY)
    if (!stored) return null
    return new Identity(stored, await device())
  }

  /** Makes a new key for `name` and keeps it, replacing any other. */
  static async create(name: string): Promise<Identity> {
    return Identity.fromSeed(name, randomBytes(32))
  }

  /** Keeps the key whose seed is `seed` (an import), replacing any other. */
  static async fromSeed(name: string, seed: Uint8Array, expectedPublicKey?: string): Promise<Identity> {
    ensureEd25519()
    const publicKey = await publicKeyOf(seed)
    if (expectedPublicKey !== undefined && expectedPublicKey !== publicKey) {
      throw new Error("The key file's public key does not belong to its secret key: the file is damaged.")
    }
    const signingKey = await crypto.subtle.importKey("pkcs8", pkcs8(seed) as BufferSource, { name: "Ed25519" }, false, ["sign"])
    const wrapKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"])
    const iv = randomBytes(12)
    const wrappedSeed = await crypto.subtle.encrypt({ name: "AES-GCM", iv: iv as BufferSource }, wrapKey, seed as BufferSource)
    const stored: StoredIdentity = { name: cleanName(name), publicKey, signingKey, wrapKey, wrappedSeed, iv }
    await idb.put(IDENTITY_KEY, stored)
    return new Identity(stored, await device())
  }
}

/** A name as the relay keeps it: one line, trimmed, at most 100 characters. */
export function cleanName(name: string): string {
  return [...name.split(/\s+/).filter(Boolean).join(" ")].slice(0, 100).join("")
}

function pkcs8(seed: Uint8Array): Uint8Array {
  const der = new Uint8Array(PKCS8_PREFIX.length + 32)
  der.set(PKCS8_PREFIX)
  der.set(seed, PKCS8_PREFIX.length)
  return der
}

/** The base58 public key of `seed`, through a short-lived extractable key. */
async function publicKeyOf(seed: Uint8Array): Promise<string> {
  if (seed.length !== 32) throw new Error("An ed25519 secret key is 32 bytes.")
  const key = await crypto.subtle.importKey("pkcs8", pkcs8(seed) as BufferSource, { name: "Ed25519" }, true, ["sign"])
  const jwk = await crypto.subtle.exportKey("jwk", key)
  if (!jwk.x) throw new Error("This browser did not give the public half of the key.")
  const b64 = jwk.x.replace(/-/g, "+").replace(/_/g, "/")
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0))
  return base58(bytes)
}

function ensureEd25519(): void {
  if (!globalThis.crypto?.subtle) {
    throw new Error("This page needs a secure connection (https) to make your key.")
  }
}

/** This browser's device bytes, made once. */
async function device(): Promise<Uint8Array> {
  const known = await idb.get<Uint8Array>(DEVICE_KEY)
  if (known && known.length === DEVICE_BYTES) return known
  const made = randomBytes(DEVICE_BYTES)
  await idb.put(DEVICE_KEY, made)
  return made
}
