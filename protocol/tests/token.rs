//! The connection token from the outside: minted tokens verify, every kind of
//! bad token is refused with its own error, garbage never panics, the replay
//! memory stays bounded without forgetting live nonces, and a token made the
//! way a generic JWT library makes one is accepted.

use std::collections::BTreeMap;
use std::mem::discriminant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore as _, SeedableRng as _};
use rapport_protocol::ids::{PublicKey, UnixMillis};
use rapport_protocol::token::{self, AuthError, MintError, Verifier, VerifierConfig};

const RELAY: &str = "relay-1";
/// 2023-11-14, in unix milliseconds.
const T0: u64 = 1_700_000_000_000;
const SKEW_MS: u64 = 60_000;

fn signing_key(rng: &mut ChaCha20Rng) -> SigningKey {
    let mut secret = [0; 32];
    rng.fill_bytes(&mut secret);
    SigningKey::from_bytes(&secret)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn verifier() -> Verifier {
    Verifier::new(VerifierConfig::new(RELAY))
}

/// Signs header and claims JSON the way any JWT library does.
fn hand_mint(key: &SigningKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

/// Claims JSON with `sub` = `subject`, times in unix seconds.
fn claims(subject: &SigningKey, aud: &str, iat: u64, exp: u64, jti: &[u8]) -> String {
    serde_json::json!({
        "sub": PublicKey::from(subject.verifying_key()).to_string(),
        "aud": aud,
        "iat": iat,
        "exp": exp,
        "jti": b64(jti),
    })
    .to_string()
}

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

proptest! {
    #[test]
    fn a_minted_token_verifies_to_its_key_once(
        seed: u64,
        now in T0..T0 + 10_000_000_000,
        lifetime in 1..=300u64,
        verify_after in 0..300_000u64,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let jwt = token::mint(&key, RELAY, UnixMillis(now), lifetime, &mut rng).unwrap();
        // `iat` is `now` rounded down to the second; the token is valid until
        // `exp + skew`, exclusive.
        let last_valid = now / 1000 * 1000 + lifetime * 1000 + SKEW_MS - 1;
        let at = UnixMillis((now + verify_after).min(last_valid));
        let mut verifier = verifier();
        let verified = verifier.verify(&jwt, at).unwrap();
        prop_assert_eq!(verified.public_key(), PublicKey::from(key.verifying_key()));
        prop_assert_eq!(verified.issued_at(), UnixMillis(now / 1000 * 1000));
        prop_assert_eq!(verified.expires_at(), UnixMillis((now / 1000 + lifetime) * 1000));
        prop_assert_eq!(verified.token_id().as_bytes().len(), 16);
        prop_assert_eq!(verifier.verify(&jwt, at), Err(AuthError::Replayed));
    }

    #[test]
    fn a_flipped_signature_byte_is_a_bad_signature(
        seed: u64,
        index in 0..64usize,
        mask in 1..=255u8,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let jwt = token::mint(&key, RELAY, UnixMillis(T0), 60, &mut rng).unwrap();
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        signature[index] ^= mask;
        let forged = format!("{input}.{}", b64(&signature));
        let mut verifier = verifier();
        prop_assert_eq!(verifier.verify(&forged, UnixMillis(T0)), Err(AuthError::BadSignature));
        prop_assert_eq!(verifier.replay_cache_len(), 0);
        // The genuine token is still unused.
        prop_assert!(verifier.verify(&jwt, UnixMillis(T0)).is_ok());
    }

    #[test]
    fn a_token_signed_by_another_key_is_a_bad_signature(seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (named, signer) = (signing_key(&mut rng), signing_key(&mut rng));
        let jwt = hand_mint(&signer, HEADER, &claims(&named, RELAY, T0 / 1000, T0 / 1000 + 60, &[1; 16]));
        let mut verifier = verifier();
        prop_assert_eq!(verifier.verify(&jwt, UnixMillis(T0)), Err(AuthError::BadSignature));
        prop_assert_eq!(verifier.replay_cache_len(), 0);
    }

    #[test]
    fn a_token_for_another_relay_is_refused(seed: u64, aud in "[a-z0-9-]{0,20}") {
        prop_assume!(aud != RELAY);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let jwt = token::mint(&key, &aud, UnixMillis(T0), 60, &mut rng).unwrap();
        let mut verifier = verifier();
        prop_assert_eq!(
            verifier.verify(&jwt, UnixMillis(T0)),
            Err(AuthError::WrongAudience { expected: RELAY.into(), found: aud })
        );
        prop_assert_eq!(verifier.replay_cache_len(), 0);
    }

    #[test]
    fn an_expired_token_is_refused(seed: u64, lifetime in 1..=300u64, late in 0..10_000_000u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let jwt = token::mint(&key, RELAY, UnixMillis(T0), lifetime, &mut rng).unwrap();
        let exp = T0 + lifetime * 1000;
        let result = verifier().verify(&jwt, UnixMillis(exp + SKEW_MS + late));
        prop_assert_eq!(result, Err(AuthError::Expired { expired_at: UnixMillis(exp) }));
    }

    #[test]
    fn a_token_from_the_future_is_refused(seed: u64, early in 1..10_000_000u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let jwt = token::mint(&key, RELAY, UnixMillis(T0), 60, &mut rng).unwrap();
        let result = verifier().verify(&jwt, UnixMillis(T0 - SKEW_MS - early));
        prop_assert_eq!(result, Err(AuthError::NotYetValid { valid_from: UnixMillis(T0) }));
    }

    #[test]
    fn a_lifetime_over_300_seconds_is_refused(seed: u64, lifetime in 301..100_000u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let minted = token::mint(&key, RELAY, UnixMillis(T0), lifetime, &mut rng);
        prop_assert!(matches!(minted, Err(MintError::InvalidLifetime { .. })), "{:?}", minted);
        let iat = T0 / 1000;
        let jwt = hand_mint(&key, HEADER, &claims(&key, RELAY, iat, iat + lifetime, &[2; 16]));
        prop_assert_eq!(
            verifier().verify(&jwt, UnixMillis(T0)),
            Err(AuthError::LifetimeTooLong { lifetime_millis: lifetime * 1000, max_secs: 300 })
        );
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        prop_assert!(verifier().verify(&text, UnixMillis(T0)).is_err());
    }

    #[test]
    fn arbitrary_jwt_shaped_text_never_panics(text in "[A-Za-z0-9_=.-]{0,300}") {
        prop_assert!(verifier().verify(&text, UnixMillis(T0)).is_err());
    }

    #[test]
    fn arbitrary_segments_never_panic(
        header in proptest::collection::vec(any::<u8>(), 0..200),
        claims in proptest::collection::vec(any::<u8>(), 0..400),
        signature in proptest::collection::vec(any::<u8>(), 0..100),
        real_header: bool,
    ) {
        let header = if real_header { b64(HEADER) } else { b64(header) };
        let text = format!("{header}.{}.{}", b64(claims), b64(signature));
        prop_assert!(verifier().verify(&text, UnixMillis(T0)).is_err());
    }

    #[test]
    fn arbitrary_claims_json_never_panics(
        seed: u64,
        sub in prop_oneof![Just(None), "[1-9A-HJ-NP-Za-km-z]{0,50}".prop_map(Some)],
        aud in any::<Option<String>>(),
        iat in prop_oneof![Just(serde_json::Value::Null), any::<i64>().prop_map(Into::into), any::<f64>().prop_map(Into::into)],
        exp in prop_oneof![Just(serde_json::Value::Null), any::<u64>().prop_map(Into::into), any::<f64>().prop_map(Into::into)],
        jti in any::<Option<Vec<u8>>>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let mut claims = serde_json::Map::new();
        let sub = sub.unwrap_or_else(|| PublicKey::from(key.verifying_key()).to_string());
        claims.insert("sub".into(), sub.into());
        if let Some(aud) = aud {
            claims.insert("aud".into(), aud.into());
        }
        claims.insert("iat".into(), iat);
        claims.insert("exp".into(), exp);
        if let Some(jti) = jti {
            claims.insert("jti".into(), b64(jti).into());
        }
        let jwt = hand_mint(&key, HEADER, &serde_json::Value::Object(claims).to_string());
        let _ = verifier().verify(&jwt, UnixMillis(T0));
    }
}

/// One step of the replay property: the host clock moves by `tick` ms
/// (sometimes backwards), then a new token is minted on a device whose clock
/// is `offset` ms from the host's and presented, or an earlier token is
/// presented again (`which` counts back from the latest).
#[derive(Debug, Clone)]
enum Step {
    Fresh {
        tick: i64,
        offset: i64,
        lifetime: u64,
    },
    Again {
        tick: i64,
        which: usize,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let tick = prop_oneof![4 => 0..40_000i64, 1 => -60_000..0i64];
    let step = prop_oneof![
        3 => (tick.clone(), -200_000..90_000i64, 1..=300u64)
            .prop_map(|(tick, offset, lifetime)| Step::Fresh { tick, offset, lifetime }),
        2 => (tick, any::<usize>()).prop_map(|(tick, which)| Step::Again { tick, which }),
    ];
    proptest::collection::vec(step, 1..80)
}

/// What the verifier must do, computed from the documented rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    NotYetValid,
    Expired,
    Replayed,
    Full,
}

fn outcome(result: &Result<token::Verified, AuthError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Accepted,
        Err(AuthError::NotYetValid { .. }) => Outcome::NotYetValid,
        Err(AuthError::Expired { .. }) => Outcome::Expired,
        Err(AuthError::Replayed) => Outcome::Replayed,
        Err(AuthError::ReplayCacheFull { .. }) => Outcome::Full,
        Err(other) => panic!("unexpected refusal {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_replay_memory_is_bounded_and_forgets_only_expired_tokens(
        seed: u64,
        capacity in 0..6usize,
        steps in steps(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let mut config = VerifierConfig::new(RELAY);
        config.replay_capacity = capacity;
        let mut verifier = Verifier::new(config);
        // Every token presented so far, with its iat and exp in ms.
        let mut tokens: Vec<(String, u64, u64)> = Vec::new();
        // The model: the latest time seen, and each remembered token's deadline.
        let mut clock = 0;
        let mut live: BTreeMap<usize, u64> = BTreeMap::new();
        let mut accepted = std::collections::BTreeSet::new();
        let mut now = T0;
        for step in steps {
            let which = match step {
                Step::Fresh { tick, offset, lifetime } => {
                    now = now.saturating_add_signed(tick);
                    let minted = now.saturating_add_signed(offset);
                    let jwt = token::mint(&key, RELAY, UnixMillis(minted), lifetime, &mut rng).unwrap();
                    let iat = minted / 1000 * 1000;
                    tokens.push((jwt, iat, iat + lifetime * 1000));
                    tokens.len() - 1
                }
                Step::Again { .. } if tokens.is_empty() => continue,
                Step::Again { tick, which } => {
                    now = now.saturating_add_signed(tick);
                    // Mostly one of the last few tokens, which may still be live.
                    tokens.len() - 1 - which % tokens.len().min(6)
                }
            };
            clock = clock.max(now);
            live.retain(|_, deadline| *deadline > clock);
            let (jwt, iat, exp) = &tokens[which];
            let expected = if *iat > clock + SKEW_MS {
                Outcome::NotYetValid
            } else if clock >= exp + SKEW_MS {
                Outcome::Expired
            } else if live.contains_key(&which) {
                Outcome::Replayed
            } else if live.len() >= capacity {
                Outcome::Full
            } else {
                live.insert(which, exp + SKEW_MS);
                Outcome::Accepted
            };
            let result = verifier.verify(jwt, UnixMillis(now));
            prop_assert_eq!(outcome(&result), expected, "step at {} for token {}", now, which);
            if expected == Outcome::Accepted {
                // A token is never accepted twice, at any time.
                prop_assert!(accepted.insert(which), "token {} accepted twice", which);
            }
            prop_assert!(verifier.replay_cache_len() <= capacity);
            prop_assert_eq!(verifier.replay_cache_len(), live.len());
        }
    }
}

#[test]
fn each_refusal_has_its_own_variant() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (key, other) = (signing_key(&mut rng), signing_key(&mut rng));
    let iat = T0 / 1000;
    let now = UnixMillis(T0);
    let fresh = |rng: &mut ChaCha20Rng| token::mint(&key, RELAY, now, 60, rng).unwrap();
    let mut refusals = Vec::new();

    let (input, signature) = fresh(&mut rng)
        .rsplit_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[0] ^= 1;
    refusals.push(verifier().verify(&format!("{input}.{}", b64(&signature)), now));
    refusals.push(verifier().verify(
        &hand_mint(
            &other,
            HEADER,
            &claims(&key, RELAY, iat, iat + 60, &[1; 16]),
        ),
        now,
    ));
    refusals.push(verifier().verify(
        &token::mint(&key, "elsewhere", now, 60, &mut rng).unwrap(),
        now,
    ));
    refusals.push(verifier().verify(&fresh(&mut rng), UnixMillis(T0 + 200_000)));
    refusals.push(verifier().verify(&fresh(&mut rng), UnixMillis(T0 - 100_000)));
    refusals.push(verifier().verify(
        &hand_mint(&key, HEADER, &claims(&key, RELAY, iat, iat + 301, &[1; 16])),
        now,
    ));
    refusals.push(verifier().verify(
        &hand_mint(&key, HEADER, &claims(&key, RELAY, iat, iat + 60, &[1; 8])),
        now,
    ));
    let mut replaying = verifier();
    let jwt = fresh(&mut rng);
    replaying.verify(&jwt, now).unwrap();
    refusals.push(replaying.verify(&jwt, now));
    let mut full = Verifier::new({
        let mut config = VerifierConfig::new(RELAY);
        config.replay_capacity = 1;
        config
    });
    full.verify(&fresh(&mut rng), now).unwrap();
    refusals.push(full.verify(&fresh(&mut rng), now));
    refusals.push(verifier().verify("not a token", now));
    let none = hand_mint(
        &key,
        r#"{"alg":"none"}"#,
        &claims(&key, RELAY, iat, iat + 60, &[1; 16]),
    );
    refusals.push(verifier().verify(&none, now));
    let bad_sub = claims(&key, RELAY, iat, iat + 60, &[1; 16])
        .replace(&PublicKey::from(key.verifying_key()).to_string(), "abc");
    refusals.push(verifier().verify(&hand_mint(&key, HEADER, &bad_sub), now));

    let errors: Vec<AuthError> = refusals
        .into_iter()
        .map(|result| result.unwrap_err())
        .collect();
    let expected = [
        "BadSignature",
        "BadSignature",
        "WrongAudience",
        "Expired",
        "NotYetValid",
        "LifetimeTooLong",
        "NonceTooShort",
        "Replayed",
        "ReplayCacheFull",
        "Malformed",
        "UnsupportedAlgorithm",
        "BadPublicKey",
    ];
    assert_eq!(errors.len(), expected.len());
    for (error, name) in errors.iter().zip(expected) {
        assert!(
            format!("{error:?}").starts_with(name),
            "expected {name}, got {error:?}"
        );
        assert!(!error.to_string().is_empty());
    }
    // The two bad signatures share a variant; every other refusal has its own.
    for (i, a) in errors[1..].iter().enumerate() {
        for b in &errors[i + 2..] {
            assert_ne!(discriminant(a), discriminant(b), "{a:?} and {b:?}");
        }
    }
}

#[test]
fn a_token_made_like_a_generic_jwt_library_verifies() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let key = signing_key(&mut rng);
    let iat = T0 / 1000;
    let header = r#"{"typ":"JWT","kid":"device-1","alg":"EdDSA"}"#;
    let claims = format!(
        r#"{{"jti":"{}","exp":{},"iss":"rapport-cli","aud":"{RELAY}","iat":{iat},"sub":"{}","scope":["sync"]}}"#,
        b64([9; 32]),
        iat + 300,
        PublicKey::from(key.verifying_key()),
    );
    let jwt = hand_mint(&key, header, &claims);
    let verified = verifier().verify(&jwt, UnixMillis(T0 + 1234)).unwrap();
    assert_eq!(verified.public_key(), PublicKey::from(key.verifying_key()));
    assert_eq!(verified.token_id().as_bytes(), &[9; 32]);
    assert_eq!(verified.expires_at(), UnixMillis((iat + 300) * 1000));
}

proptest! {
    #[test]
    fn claims_and_header_in_any_order_with_extras_verify(
        seed: u64,
        claim_order in Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
        header_order in Just((0..3).collect::<Vec<usize>>()).prop_shuffle(),
        audience_as_array: bool,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = signing_key(&mut rng);
        let mut nonce = [0; 16];
        rng.fill_bytes(&mut nonce);
        let iat = T0 / 1000;
        let aud = if audience_as_array { format!(r#"["other","{RELAY}"]"#) } else { format!(r#""{RELAY}""#) };
        let claims = [
            format!(r#""sub":"{}""#, PublicKey::from(key.verifying_key())),
            format!(r#""aud":{aud}"#),
            format!(r#""iat":{iat}"#),
            format!(r#""exp":{}"#, iat + 120),
            format!(r#""jti":"{}""#, b64(nonce)),
            r#""iss":"someone""#.to_owned(),
            r#""extra":{"nested":[1,2,{"x":null}]}"#.to_owned(),
        ];
        let header = [r#""alg":"EdDSA""#, r#""typ":"JWT""#, r#""kid":"k""#];
        let claims: Vec<&str> = claim_order.iter().map(|&i| claims[i].as_str()).collect();
        let header: Vec<&str> = header_order.iter().map(|&i| header[i]).collect();
        let jwt = hand_mint(&key, &format!("{{{}}}", header.join(",")), &format!("{{{}}}", claims.join(",")));
        let verified = verifier().verify(&jwt, UnixMillis(T0)).unwrap();
        prop_assert_eq!(verified.public_key(), PublicKey::from(key.verifying_key()));
        prop_assert_eq!(verified.token_id().as_bytes(), &nonce[..]);
    }
}
