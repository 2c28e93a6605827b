//! The compact JWT encoding: three base64url segments, `header.claims.signature`.
//!
//! [`parse`] turns text into an [`Unverified`] token without checking the
//! signature or any policy; [`assemble`] signs a header and claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Number, Value};

use super::error::{AuthError, MalformedReason, Segment, shortened};
use super::{MAX_NONCE_LEN, MAX_TOKEN_LEN, MIN_NONCE_LEN, TokenId};
use crate::ids::PublicKey;

/// The header [`super::mint`] writes.
pub(super) const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

/// The `alg` values that mean an Ed25519 signature: `EdDSA` (RFC 8037) and
/// its fully specified successor `Ed25519` (RFC 9864).
const ALGORITHMS: [&str; 2] = ["EdDSA", "Ed25519"];

/// A token that parsed, whose signature is not yet checked.
#[derive(Debug)]
pub(super) struct Unverified<'a> {
    /// `header.claims`, the bytes the signature covers.
    pub(super) signing_input: &'a str,
    pub(super) claims: Claims,
    pub(super) signature: Signature,
}

/// The claims of a token, decoded.
#[derive(Debug)]
pub(super) struct Claims {
    pub(super) subject: PublicKey,
    pub(super) key: VerifyingKey,
    pub(super) audience: Audience,
    /// `iat` in unix milliseconds.
    pub(super) issued_at: u128,
    /// `exp` in unix milliseconds.
    pub(super) expires_at: u128,
    /// `nbf` in unix milliseconds, if the token has one.
    pub(super) not_before: Option<u128>,
    pub(super) token_id: TokenId,
}

/// The `aud` claim: RFC 7519 allows one string or an array of them.
#[derive(Debug)]
pub(super) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(super) fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|one| one == audience),
        }
    }

    pub(super) fn shown(&self) -> String {
        match self {
            Self::One(one) => shortened(one),
            Self::Many(many) => shortened(&many.join(", ")),
        }
    }
}

/// base64url without padding, as every JWT segment is written.
pub(super) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header` and `claims` (both JSON text) with `key` into a compact JWT.
pub(super) fn assemble(key: &SigningKey, header: &str, claims: &str) -> String {
    let mut token = format!("{}.{}", encode(header), encode(claims));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&encode(signature.to_bytes()));
    token
}

/// Splits and decodes a token: its length, then the header, then the claims,
/// then the signature's encoding. Checks nothing that needs the signature.
pub(super) fn parse(token: &str) -> Result<Unverified<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(MalformedReason::TooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    let mut segments = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(MalformedReason::NotThreeSegments.into());
    };
    check_header(&decode(Segment::Header, header)?)?;
    let claims_json = decode(Segment::Claims, claims)?;
    let claims_len = header.len() + 1 + claims.len();
    Ok(Unverified {
        signing_input: &token[..claims_len],
        claims: parse_claims(&claims_json)?,
        signature: parse_signature(signature)?,
    })
}

fn decode(segment: Segment, text: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| MalformedReason::NotBase64 { segment }.into())
}

fn from_json<'de, T: Deserialize<'de>>(segment: Segment, json: &'de [u8]) -> Result<T, AuthError> {
    serde_json::from_slice(json).map_err(|error| {
        MalformedReason::NotJson {
            segment,
            detail: error.to_string(),
        }
        .into()
    })
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

fn check_header(json: &[u8]) -> Result<(), AuthError> {
    let header: RawHeader = from_json(Segment::Header, json)?;
    if !ALGORITHMS.contains(&header.alg.as_str()) {
        return Err(AuthError::UnsupportedAlgorithm {
            alg: shortened(&header.alg),
        });
    }
    if let Some(typ) = header.typ {
        // Media type names are case-insensitive (RFC 7515 §4.1.9).
        if !typ.eq_ignore_ascii_case("JWT") {
            return Err(MalformedReason::NotJwt {
                typ: shortened(&typ),
            }
            .into());
        }
    }
    if header.crit.is_some() {
        return Err(MalformedReason::CriticalExtension.into());
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    aud: Value,
    iat: Number,
    exp: Number,
    #[serde(default)]
    nbf: Option<Number>,
    jti: String,
}

fn parse_claims(json: &[u8]) -> Result<Claims, AuthError> {
    let raw: RawClaims = from_json(Segment::Claims, json)?;
    let (subject, key) = parse_subject(&raw.sub)?;
    Ok(Claims {
        subject,
        key,
        audience: parse_audience(raw.aud)?,
        issued_at: numeric_date("iat", &raw.iat)?,
        expires_at: numeric_date("exp", &raw.exp)?,
        not_before: raw.nbf.map(|nbf| numeric_date("nbf", &nbf)).transpose()?,
        token_id: parse_nonce(&raw.jti)?,
    })
}

fn parse_subject(sub: &str) -> Result<(PublicKey, VerifyingKey), AuthError> {
    let bad = || AuthError::BadPublicKey {
        sub: shortened(sub),
    };
    let subject: PublicKey = sub.parse().map_err(|_| bad())?;
    let key = subject.verifying_key().map_err(|_| bad())?;
    // A small-order key "verifies" signatures its owner never made.
    if key.is_weak() {
        return Err(bad());
    }
    Ok((subject, key))
}

fn parse_audience(aud: Value) -> Result<Audience, AuthError> {
    let bad = MalformedReason::BadClaim {
        claim: "aud",
        expected: "a string or an array of strings",
    };
    match aud {
        Value::String(one) => Ok(Audience::One(one)),
        Value::Array(many) => many
            .into_iter()
            .map(|one| match one {
                Value::String(one) => Ok(one),
                _ => Err(bad.clone()),
            })
            .collect::<Result<_, _>>()
            .map(Audience::Many)
            .map_err(AuthError::from),
        _ => Err(bad.into()),
    }
}

/// A NumericDate (seconds since the epoch, possibly fractional) in
/// milliseconds.
fn numeric_date(claim: &'static str, secs: &Number) -> Result<u128, AuthError> {
    if let Some(secs) = secs.as_u64() {
        return Ok(u128::from(secs) * 1000);
    }
    match secs.as_f64() {
        // `as` saturates, and rounds toward zero, that is down here.
        Some(secs) if secs.is_finite() && secs >= 0.0 => Ok((secs * 1000.0) as u128),
        _ => Err(MalformedReason::BadClaim {
            claim,
            expected: "a non-negative number of seconds",
        }
        .into()),
    }
}

fn parse_nonce(jti: &str) -> Result<TokenId, AuthError> {
    // Refuse an overlong nonce before decoding it: 4 characters carry 3 bytes.
    if jti.len() > (MAX_NONCE_LEN * 4).div_ceil(3) {
        return Err(MalformedReason::NonceTooLong {
            len: jti.len() * 3 / 4,
            max: MAX_NONCE_LEN,
        }
        .into());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(jti)
        .map_err(|_| MalformedReason::BadClaim {
            claim: "jti",
            expected: "base64url without padding",
        })?;
    if bytes.len() < MIN_NONCE_LEN {
        return Err(AuthError::NonceTooShort {
            len: bytes.len(),
            min: MIN_NONCE_LEN,
        });
    }
    TokenId::from_slice(&bytes).ok_or_else(|| {
        MalformedReason::NonceTooLong {
            len: bytes.len(),
            max: MAX_NONCE_LEN,
        }
        .into()
    })
}

fn parse_signature(text: &str) -> Result<Signature, AuthError> {
    let bytes = decode(Segment::Signature, text)?;
    let bytes = <[u8; 64]>::try_from(bytes.as_slice())
        .map_err(|_| MalformedReason::SignatureLength { len: bytes.len() })?;
    Ok(Signature::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn claims_with(extra: &str) -> String {
        let sub = PublicKey::from(key().verifying_key());
        format!(
            r#"{{"sub":"{sub}","aud":"relay","iat":1000,"exp":1100,"jti":"{}"{extra}}}"#,
            encode([5; 16])
        )
    }

    fn parsed(header: &str, claims: &str) -> Result<Claims, AuthError> {
        parse(&assemble(&key(), header, claims)).map(|token| token.claims)
    }

    fn malformed(result: Result<Claims, AuthError>) -> MalformedReason {
        match result {
            Err(AuthError::Malformed { reason }) => reason,
            other => panic!("expected a malformed token, got {other:?}"),
        }
    }

    #[test]
    fn our_header_and_claims_parse() {
        let claims = parsed(HEADER, &claims_with("")).unwrap();
        assert_eq!(claims.subject, PublicKey::from(key().verifying_key()));
        assert!(claims.audience.contains("relay"));
        assert_eq!(
            (claims.issued_at, claims.expires_at),
            (1_000_000, 1_100_000)
        );
        assert_eq!(claims.not_before, None);
        assert_eq!(claims.token_id.as_bytes(), &[5; 16]);
    }

    #[test]
    fn headers_from_other_libraries_parse() {
        for header in [
            r#"{"typ":"JWT","alg":"EdDSA"}"#,
            r#"{"alg":"EdDSA"}"#,
            r#"{"alg":"EdDSA","typ":"jwt","kid":"k1","x":{"y":[1,2]}}"#,
            r#"{"alg":"Ed25519","typ":"JWT"}"#,
        ] {
            parsed(header, &claims_with("")).unwrap();
        }
    }

    #[test]
    fn other_algorithms_are_refused() {
        for alg in ["none", "HS256", "ES256", "eddsa"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let err = parsed(&header, &claims_with("")).unwrap_err();
            assert_eq!(
                err,
                AuthError::UnsupportedAlgorithm {
                    alg: alg.to_owned()
                }
            );
        }
        let err = malformed(parsed(r#"{"typ":"JWT"}"#, &claims_with("")));
        assert!(
            matches!(
                err,
                MalformedReason::NotJson {
                    segment: Segment::Header,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn other_types_and_critical_extensions_are_refused() {
        let err = malformed(parsed(r#"{"alg":"EdDSA","typ":"JOSE"}"#, &claims_with("")));
        assert_eq!(err, MalformedReason::NotJwt { typ: "JOSE".into() });
        let err = malformed(parsed(
            r#"{"alg":"EdDSA","crit":["b64"],"b64":false}"#,
            &claims_with(""),
        ));
        assert_eq!(err, MalformedReason::CriticalExtension);
    }

    #[test]
    fn duplicate_fields_are_refused() {
        let err = malformed(parsed(r#"{"alg":"EdDSA","alg":"none"}"#, &claims_with("")));
        assert!(matches!(err, MalformedReason::NotJson { .. }), "{err:?}");
        let err = malformed(parsed(HEADER, &claims_with(r#","aud":"other""#)));
        assert!(
            matches!(
                err,
                MalformedReason::NotJson {
                    segment: Segment::Claims,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn audience_may_be_an_array() {
        let sub = PublicKey::from(key().verifying_key());
        let claims = format!(
            r#"{{"sub":"{sub}","aud":["a","relay"],"iat":1,"exp":2,"jti":"{}"}}"#,
            encode([0; 16])
        );
        let claims = parsed(HEADER, &claims).unwrap();
        assert!(claims.audience.contains("relay"));
        assert!(!claims.audience.contains("b"));
        assert_eq!(claims.audience.shown(), "a, relay");

        let claims = claims_with("").replace(r#""aud":"relay""#, r#""aud":["relay",7]"#);
        let err = malformed(parsed(HEADER, &claims));
        assert!(
            matches!(err, MalformedReason::BadClaim { claim: "aud", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn fractional_dates_are_read_and_negative_ones_refused() {
        let claims = claims_with("").replace("1100", "1100.25");
        assert_eq!(parsed(HEADER, &claims).unwrap().expires_at, 1_100_250);
        let claims = claims_with("").replace("1000", "-1");
        let err = malformed(parsed(HEADER, &claims));
        assert!(
            matches!(err, MalformedReason::BadClaim { claim: "iat", .. }),
            "{err:?}"
        );
        let claims = claims_with(r#","nbf":1050"#);
        assert_eq!(parsed(HEADER, &claims).unwrap().not_before, Some(1_050_000));
    }

    #[test]
    fn nonces_are_bounded_both_ways() {
        let with_nonce = |bytes: &[u8]| claims_with("").replace(&encode([5; 16]), &encode(bytes));
        let err = parsed(HEADER, &with_nonce(&[1; 15])).unwrap_err();
        assert_eq!(err, AuthError::NonceTooShort { len: 15, min: 16 });
        parsed(HEADER, &with_nonce(&[1; MAX_NONCE_LEN])).unwrap();
        let err = malformed(parsed(HEADER, &with_nonce(&[1; MAX_NONCE_LEN + 1])));
        assert!(
            matches!(err, MalformedReason::NonceTooLong { .. }),
            "{err:?}"
        );
        let err = malformed(parsed(HEADER, &with_nonce(&[1; 1000])));
        assert!(
            matches!(err, MalformedReason::NonceTooLong { .. }),
            "{err:?}"
        );
        let claims = claims_with("").replace(&encode([5; 16]), "not base64 at all!!!!!!!");
        let err = malformed(parsed(HEADER, &claims));
        assert!(
            matches!(err, MalformedReason::BadClaim { claim: "jti", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_subjects_are_refused() {
        let ours = PublicKey::from(key().verifying_key()).to_string();
        // The identity point has small order: it would accept forged signatures.
        let mut identity = [0; 32];
        identity[0] = 1;
        for sub in [
            "",
            "0OIl",
            "abc",
            &PublicKey::from_bytes(identity).to_string(),
        ] {
            let claims = claims_with("").replace(&ours, sub);
            let err = parsed(HEADER, &claims).unwrap_err();
            assert!(
                matches!(err, AuthError::BadPublicKey { .. }),
                "{sub}: {err:?}"
            );
        }
    }

    #[test]
    fn length_is_checked_before_anything_else() {
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        let err = parse(&long).unwrap_err();
        assert_eq!(
            err,
            MalformedReason::TooLong {
                len: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN
            }
            .into()
        );
    }

    #[test]
    fn segments_must_be_three_and_unpadded() {
        let token = assemble(&key(), HEADER, &claims_with(""));
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{token}."),
            format!(".{token}"),
        ] {
            let err = parse(&bad).unwrap_err();
            assert!(matches!(err, AuthError::Malformed { .. }), "{bad}: {err:?}");
        }
        let (head, rest) = token.split_once('.').unwrap();
        let padded = format!("{head}=.{rest}");
        let err = parse(&padded).unwrap_err();
        assert_eq!(
            err,
            MalformedReason::NotBase64 {
                segment: Segment::Header
            }
            .into()
        );
        let short = format!(
            "{}.{}",
            &token[..token.rfind('.').unwrap()],
            encode([0; 63])
        );
        let err = parse(&short).unwrap_err();
        assert_eq!(err, MalformedReason::SignatureLength { len: 63 }.into());
    }
}
