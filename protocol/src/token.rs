//! The connection token: how a device proves to the relay which key it holds.
//!
//! # Format
//!
//! A token is a JWT (RFC 7519) in compact form, signed with EdDSA (RFC 8037,
//! Ed25519) by the key it names, so any JWT library can make one:
//!
//! ```text
//! base64url(header) . base64url(claims) . base64url(signature)
//! header  {"alg":"EdDSA","typ":"JWT"}
//! claims  {"sub":"<base58 public key>","aud":"<relay id>",
//!          "iat":<unix seconds>,"exp":<unix seconds>,"jti":"<base64url nonce>"}
//! ```
//!
//! Every segment is base64url without padding; the signature is over the
//! ASCII text `header.claims` as it appears in the token. The verifier reads
//! what other libraries write: header and claims keys in any order, extra
//! header fields (`kid`…) and extra claims (`iss`…) ignored, `typ` absent or
//! any case of `JWT`, `alg` also as `Ed25519` (RFC 9864's name for the same
//! algorithm), `aud` as a string or an array of strings, fractional
//! `iat`/`exp`, and an optional `nbf`. It refuses duplicate keys, a `crit`
//! header, and `jti` nonces shorter than [`MIN_NONCE_LEN`] or longer than
//! [`MAX_NONCE_LEN`] bytes. [`mint`] writes exactly the header above and a
//! 16-byte nonce.
//!
//! # Checks, in order
//!
//! [`Verifier::verify`] is the only way to get a [`Verified`]. It checks, and
//! stops at the first failure, each with its own [`AuthError`] variant:
//!
//! 1. length: at most [`MAX_TOKEN_LEN`] bytes, before any decoding;
//! 2. three segments, each base64url;
//! 3. header: `alg` is EdDSA, `typ` is JWT if present, no `crit`;
//! 4. claims: all five present with the right types, `sub` a valid
//!    (not small-order) ed25519 key, `jti` long enough;
//! 5. signature, with `verify_strict` (no malleable signatures);
//! 6. audience: `aud` names this relay;
//! 7. time: `exp > iat`, `exp - iat <= max_lifetime` (300 s),
//!    `iat - skew <= now < exp + skew` (skew 60 s; `nbf` too if present);
//! 8. replay: this key and nonce were not accepted before.
//!
//! Everything before the signature costs little and allocates at most a few
//! kilobytes; nothing an unsigned token says reaches the replay memory, and
//! nothing a signed but stale or misdirected token says does either.
//!
//! # Why the replay memory is bounded this way
//!
//! A nonce must be remembered only as long as its token could otherwise pass
//! the time checks, that is until `exp + skew`; after that the token is
//! refused as expired anyway. So the verifier forgets each nonce at that
//! moment (the oldest first, amortized `O(log n)` per token), and never
//! sooner. Because lifetimes are at most 300 s, the memory holds at most the
//! tokens accepted in the last `300 + 2 × 60` seconds. If even that exceeds
//! [`VerifierConfig::replay_capacity`] the verifier fails closed: it refuses
//! new tokens with [`AuthError::ReplayCacheFull`] rather than forget a nonce
//! that could still be replayed. Entries have a fixed size (the key and at
//! most [`MAX_NONCE_LEN`] nonce bytes), so memory is bounded by the capacity
//! alone. The verifier's clock never runs backwards, so a forgotten nonce
//! cannot become valid again when the host's clock steps back.
//!
//! # Example
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use rapport_protocol::ids::{PublicKey, UnixMillis};
//! use rapport_protocol::token::{self, AuthError, Verifier, VerifierConfig};
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(7);
//! let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let now = UnixMillis(1_700_000_000_000);
//!
//! // On the device:
//! let jwt = token::mint(&key, "relay-1", now, 120, &mut rng)?;
//!
//! // On the relay:
//! let mut verifier = Verifier::new(VerifierConfig::new("relay-1"));
//! let verified = verifier.verify(&jwt, now)?;
//! assert_eq!(verified.public_key(), PublicKey::from(key.verifying_key()));
//! assert_eq!(verifier.verify(&jwt, now), Err(AuthError::Replayed));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod jwt;
mod replay;
mod verifier;

use std::fmt;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRng;

pub use self::error::{AuthError, MalformedReason, MintError, Segment};
pub use self::verifier::{Verifier, VerifierConfig};
use crate::ids::{PublicKey, UnixMillis};

/// The longest token text a verifier reads, in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;
/// The longest lifetime (`exp - iat`) a token may have, in seconds.
pub const MAX_LIFETIME_SECS: u64 = 300;
/// The clock skew a verifier allows by default, both ways, in seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
/// How many live tokens a verifier remembers by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// How many of those one key may hold by default: a person's devices open
/// a connection and make API calls now and then; 2 000 live tokens in five
/// minutes is far beyond that.
pub const DEFAULT_REPLAY_SHARE: usize = 2_000;
/// The shortest `jti` nonce accepted, in bytes; [`mint`] uses this many.
pub const MIN_NONCE_LEN: usize = 16;
/// The longest `jti` nonce accepted, in bytes.
pub const MAX_NONCE_LEN: usize = 64;

/// Makes a token that proves to the relay `audience` that its holder has
/// `key`, valid from `now` (rounded down to the second) for `lifetime_secs`
/// (1 to [`MAX_LIFETIME_SECS`]), with a fresh 16-byte nonce from `rng`.
pub fn mint(
    key: &SigningKey,
    audience: &str,
    now: UnixMillis,
    lifetime_secs: u64,
    rng: &mut impl CryptoRng,
) -> Result<String, MintError> {
    if lifetime_secs == 0 || lifetime_secs > MAX_LIFETIME_SECS {
        return Err(MintError::InvalidLifetime {
            requested_secs: lifetime_secs,
            max_secs: MAX_LIFETIME_SECS,
        });
    }
    let mut nonce = [0; MIN_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let issued_at = now.as_secs();
    let claims = serde_json::json!({
        "sub": PublicKey::from(key.verifying_key()).to_string(),
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at.saturating_add(lifetime_secs),
        "jti": jwt::encode(nonce),
    });
    let token = jwt::assemble(key, jwt::HEADER, &claims.to_string());
    if token.len() > MAX_TOKEN_LEN {
        return Err(MintError::TooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    Ok(token)
}

/// A token that passed every check of [`Verifier::verify`], the only place
/// one is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    public_key: PublicKey,
    issued_at: UnixMillis,
    expires_at: UnixMillis,
    token_id: TokenId,
}

impl Verified {
    /// The key that signed the token: who is connecting.
    pub const fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// When the token was issued (`iat`).
    pub const fn issued_at(&self) -> UnixMillis {
        self.issued_at
    }

    /// When the token expires (`exp`). A connection opened with it may
    /// outlive it; the token only guards the opening.
    pub const fn expires_at(&self) -> UnixMillis {
        self.expires_at
    }

    /// The token's nonce (`jti`).
    pub const fn token_id(&self) -> &TokenId {
        &self.token_id
    }
}

/// A token's nonce (`jti`): [`MIN_NONCE_LEN`] to [`MAX_NONCE_LEN`] bytes,
/// shown as base64url.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId {
    len: u8,
    bytes: [u8; MAX_NONCE_LEN],
}

impl TokenId {
    /// The nonce, if it is at most [`MAX_NONCE_LEN`] bytes.
    fn from_slice(nonce: &[u8]) -> Option<Self> {
        let mut bytes = [0; MAX_NONCE_LEN];
        bytes.get_mut(..nonce.len())?.copy_from_slice(nonce);
        Some(Self {
            len: u8::try_from(nonce.len()).ok()?,
            bytes,
        })
    }

    /// The nonce's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&jwt::encode(self.as_bytes()))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    const NOW: UnixMillis = UnixMillis(1_700_000_000_999);

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[4; 32])
    }

    #[test]
    fn mint_refuses_lifetimes_outside_one_to_300_seconds() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for lifetime in [0, 301, u64::MAX] {
            let err = mint(&key(), "relay", NOW, lifetime, &mut rng).unwrap_err();
            assert_eq!(
                err,
                MintError::InvalidLifetime {
                    requested_secs: lifetime,
                    max_secs: 300
                }
            );
        }
        mint(&key(), "relay", NOW, 1, &mut rng).unwrap();
        mint(&key(), "relay", NOW, 300, &mut rng).unwrap();
    }

    #[test]
    fn mint_refuses_a_token_no_verifier_would_read() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let err = mint(&key(), &"r".repeat(MAX_TOKEN_LEN), NOW, 60, &mut rng).unwrap_err();
        assert!(matches!(err, MintError::TooLong { .. }), "{err:?}");
    }

    #[test]
    fn minted_tokens_have_the_documented_shape() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let token = mint(&key(), "relay", NOW, 120, &mut rng).unwrap();
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[0], jwt::encode(r#"{"alg":"EdDSA","typ":"JWT"}"#));
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                segments[1],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["sub"],
            PublicKey::from(key().verifying_key()).to_string()
        );
        assert_eq!(claims["aud"], "relay");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_120);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
        assert_eq!(claims.as_object().unwrap().len(), 5);
    }

    #[test]
    fn mint_is_deterministic_given_the_rng_and_nonces_differ() {
        let a = mint(&key(), "relay", NOW, 60, &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        let b = mint(&key(), "relay", NOW, 60, &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        let c = mint(&key(), "relay", NOW, 60, &mut ChaCha20Rng::seed_from_u64(6)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_minted_token_verifies_once() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let token = mint(&key(), "relay", NOW, 300, &mut rng).unwrap();
        let mut verifier = Verifier::new(VerifierConfig::new("relay"));
        let verified = verifier.verify(&token, NOW).unwrap();
        assert_eq!(
            verified.public_key(),
            PublicKey::from(key().verifying_key())
        );
        assert_eq!(verified.expires_at(), UnixMillis(1_700_000_300_000));
        assert_eq!(verified.token_id().as_bytes().len(), MIN_NONCE_LEN);
        assert_eq!(verifier.verify(&token, NOW), Err(AuthError::Replayed));
    }

    #[test]
    fn token_ids_keep_their_length() {
        let id = TokenId::from_slice(&[7; 20]).unwrap();
        assert_eq!(id.as_bytes(), &[7; 20]);
        assert_eq!(id.to_string(), jwt::encode([7; 20]));
        assert_ne!(id, TokenId::from_slice(&[7; 21]).unwrap());
        assert!(TokenId::from_slice(&[7; MAX_NONCE_LEN + 1]).is_none());
    }
}
