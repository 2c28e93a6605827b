// Connection tokens: a JWT signed with EdDSA by the person's key, fresh for
// every WebSocket connection and every API call (the relay refuses a nonce
// it has seen). Claims: sub (base58 public key), aud (the relay id from
// GET /api/info), iat, exp (at most 300 s later), jti (16 random bytes).

import { base64url, randomBytes, utf8 } from "../lib/encoding"
import type { Identity } from "./keys"

const HEADER = base64url(utf8('{"alg":"EdDSA","typ":"JWT"}'))
/** How long a token is good for; the relay allows at most 300 s. */
const LIFETIME_SECS = 120

export async function mintToken(identity: Identity, audience: string, nowMs = Date.now()): Promise<string> {
  const iat = Math.floor(nowMs / 1000)
  const claims = {
    sub: identity.publicKey,
    aud: audience,
    iat,
    exp: iat + LIFETIME_SECS,
    jti: base64url(randomBytes(16)),
  }
  const input = `${HEADER}.${base64url(utf8(JSON.stringify(claims)))}`
  const signature = await identity.sign(utf8(input))
  return `${input}.${base64url(signature)}`
}
