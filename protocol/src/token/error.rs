//! Why a token was refused, or could not be made.

use std::fmt;

use crate::ids::UnixMillis;

/// Why [`Verifier::verify`](super::Verifier::verify) refused a token.
///
/// Each way a token can fail has its own variant, so a relay can count them
/// separately and answer with a clear message. Every message is safe to send
/// back to the client that presented the token: it names only what the token
/// itself said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The text is not a compact JWT we can read.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: MalformedReason,
    },
    /// The header names an algorithm other than EdDSA.
    #[error("the token is signed with `{alg}`; only EdDSA (Ed25519) is accepted")]
    UnsupportedAlgorithm {
        /// The `alg` the header names.
        alg: String,
    },
    /// The `sub` claim is not a usable ed25519 public key.
    #[error("the token's subject `{sub}` is not a base58 ed25519 public key")]
    BadPublicKey {
        /// The `sub` claim, shortened if long.
        sub: String,
    },
    /// The signature was not made by the key in `sub` over this header and
    /// these claims.
    #[error("the token's signature does not verify with the key it names")]
    BadSignature,
    /// The token was made for another relay.
    #[error("the token is for `{found}`, not for this relay (`{expected}`)")]
    WrongAudience {
        /// This relay's id.
        expected: String,
        /// The `aud` claim (several audiences are joined with `, `).
        found: String,
    },
    /// `exp` is not after `iat`.
    #[error("the token expires before it is issued")]
    ExpiresBeforeIssued,
    /// `exp - iat` is longer than the verifier allows.
    #[error("the token is valid for {lifetime_millis} ms, more than the {max_secs} s allowed")]
    LifetimeTooLong {
        /// `exp - iat` in milliseconds.
        lifetime_millis: u64,
        /// The longest lifetime the verifier accepts.
        max_secs: u64,
    },
    /// The token is issued (or valid from) further in the future than the
    /// allowed clock skew.
    #[error(
        "the token is not valid before {} (unix ms); check the clock of the device that made it",
        .valid_from.0
    )]
    NotYetValid {
        /// `iat`, or `nbf` if that is later.
        valid_from: UnixMillis,
    },
    /// The token's expiry plus the allowed clock skew has passed.
    #[error("the token expired at {} (unix ms)", .expired_at.0)]
    Expired {
        /// `exp`.
        expired_at: UnixMillis,
    },
    /// The `jti` nonce is too short to be unique.
    #[error("the token's nonce (jti) is {len} bytes; at least {min} are required")]
    NonceTooShort {
        /// The decoded length of `jti`.
        len: usize,
        /// The shortest nonce accepted.
        min: usize,
    },
    /// This token (its key and nonce) was accepted before.
    #[error("the token was already used; make a new one for each connection")]
    Replayed,
    /// The verifier already remembers as many live tokens as it may, and
    /// refuses new ones rather than forget a nonce that could be replayed.
    #[error("too many recent connections ({capacity} live tokens); try again shortly")]
    ReplayCacheFull {
        /// The number of live tokens the verifier remembers.
        capacity: usize,
    },
    /// This key has its share of live tokens already: it minted too many
    /// in the last few minutes.
    #[error("too many recent connections by this key ({share} live tokens); try again shortly")]
    TooManyTokens {
        /// How many live tokens one key may hold.
        share: usize,
    },
    /// The token was issued before the relay started: its nonce may have
    /// been used before a restart, which the relay does not remember.
    #[error("the token was issued before the relay started; make a new one")]
    IssuedBeforeStart,
    /// The token was issued ahead of the relay's clock, and the relay
    /// could not record that durably: after a restart it could not tell
    /// the token was used.
    #[error("the relay cannot record a token issued ahead of its clock right now; try again")]
    Unrecorded,
}

impl From<MalformedReason> for AuthError {
    fn from(reason: MalformedReason) -> Self {
        Self::Malformed { reason }
    }
}

/// What is wrong with a token that is not a readable compact JWT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// The text is longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN); it was
    /// not decoded at all.
    #[error("it is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// The length of the text in bytes.
        len: usize,
        /// The longest token accepted.
        max: usize,
    },
    /// The text is not three segments separated by `.`.
    #[error("it is not three segments separated by `.`")]
    NotThreeSegments,
    /// A segment is not base64url without padding.
    #[error("the {segment} is not base64url without padding")]
    NotBase64 {
        /// The segment.
        segment: Segment,
    },
    /// The header or the claims are not the JSON object expected.
    #[error("the {segment} is not the JSON expected: {detail}")]
    NotJson {
        /// The segment.
        segment: Segment,
        /// What the JSON parser said.
        detail: String,
    },
    /// The header's `typ` is present and is not `JWT`.
    #[error("the header's typ is `{typ}`, not `JWT`")]
    NotJwt {
        /// The `typ` the header names, shortened if long.
        typ: String,
    },
    /// The header lists critical extensions (`crit`), none of which we
    /// implement (RFC 7515 §4.1.11 says to refuse the token then).
    #[error("the header lists critical extensions (crit), which are not supported")]
    CriticalExtension,
    /// A claim has the wrong type or encoding.
    #[error("the {claim} claim is not {expected}")]
    BadClaim {
        /// The claim's name.
        claim: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// The `jti` nonce decodes to more bytes than a verifier remembers.
    #[error("the nonce (jti) is {len} bytes, more than the {max} allowed")]
    NonceTooLong {
        /// The decoded length of `jti`, or a lower bound of it.
        len: usize,
        /// The longest nonce accepted.
        max: usize,
    },
    /// The signature segment does not decode to 64 bytes.
    #[error("the signature is {len} bytes, not 64")]
    SignatureLength {
        /// The decoded length of the signature.
        len: usize,
    },
}

/// One of the three segments of a compact JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The JOSE header.
    Header,
    /// The claims set.
    Claims,
    /// The signature.
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Claims => "claims",
            Self::Signature => "signature",
        })
    }
}

/// Why [`mint`](super::mint) could not make a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// The lifetime asked for is zero or longer than
    /// [`MAX_LIFETIME_SECS`](super::MAX_LIFETIME_SECS).
    #[error("a token lifetime must be 1 to {max_secs} seconds, not {requested_secs}")]
    InvalidLifetime {
        /// The lifetime asked for.
        requested_secs: u64,
        /// The longest lifetime allowed.
        max_secs: u64,
    },
    /// The token would be longer than a verifier reads (the audience is too
    /// long).
    #[error("the token would be {len} bytes long, more than the {max} a verifier reads")]
    TooLong {
        /// The length the token would have.
        len: usize,
        /// The longest token a verifier reads.
        max: usize,
    },
}

/// Keeps token text quoted in error messages short.
pub(super) fn shortened(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
