//! Tokens the relay must refuse at the upgrade: garbage, well-formed but
//! unsigned, for another relay, expired, not yet valid, with a damaged
//! signature, or replayed after the relay accepted them once.

use std::sync::{Mutex, MutexGuard, PoisonError};

use rand::Rng;
use rapport_protocol::ids::UnixMillis;
use rapport_protocol::token;

use super::frames::{random_bytes, random_string};
use crate::peer::{mint_token, now};
use crate::relay::TestRelay;

/// Tokens the relay already accepted once, shared by every attacker.
#[derive(Debug, Default)]
pub struct UsedTokens(Mutex<Vec<String>>);

impl UsedTokens {
    /// Remembers a token the relay accepted.
    pub fn push(&self, token: String) {
        lock(&self.0).push(token);
    }

    /// One of the tokens remembered, if any.
    fn pick(&self, rng: &mut impl Rng) -> Option<String> {
        let used = lock(&self.0);
        match used.len() {
            0 => None,
            n => Some(used[rng.random_range(0..n)].clone()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Base64url without padding, for hand-made tokens.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A token the relay must refuse (`None`: no token at all).
pub fn bad_token(rng: &mut impl Rng, relay: &TestRelay, used: &UsedTokens) -> Option<String> {
    let signer = super::attacker_key(rng);
    let t = now().0;
    match rng.random_range(0..10) {
        0 => None,
        1 => Some(random_string(rng, 200)),
        2 => Some(format!(
            "{}.{}.{}",
            b64url(&random_bytes(rng, 40)),
            b64url(&random_bytes(rng, 120)),
            b64url(&random_bytes(rng, 64))
        )),
        // Well-formed JSON with wrong or wild claims, signed by nobody.
        3 => {
            let header = b64url(br#"{"alg":"EdDSA","typ":"JWT"}"#);
            let claims = serde_json::json!({
                "sub": random_string(rng, 44),
                "aud": if rng.random() { relay.relay_id.clone() } else { random_string(rng, 10) },
                "iat": rng.random::<i64>(),
                "exp": rng.random::<i64>(),
                "jti": random_string(rng, 30),
            });
            Some(format!(
                "{header}.{}.{}",
                b64url(claims.to_string().as_bytes()),
                b64url(&random_bytes(rng, 64))
            ))
        }
        // Another relay's audience.
        4 => Some(mint_token(&signer, "relay-elsewhere")),
        // Expired ten minutes ago.
        5 => Some(
            token::mint(
                &signer,
                &relay.relay_id,
                UnixMillis(t - 600_000),
                60,
                &mut rand::rng(),
            )
            .expect("a 60 s token"),
        ),
        // Issued ten minutes from now.
        6 => Some(
            token::mint(
                &signer,
                &relay.relay_id,
                UnixMillis(t + 600_000),
                60,
                &mut rand::rng(),
            )
            .expect("a 60 s token"),
        ),
        // One signature byte off.
        7 => {
            let genuine = mint_token(&signer, &relay.relay_id);
            let (rest, signature) = genuine.rsplit_once('.').expect("three parts");
            let mut sig: Vec<char> = signature.chars().collect();
            // Not the last character: some of its bits are padding.
            let i = rng.random_range(0..sig.len() - 1);
            sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
            Some(format!("{rest}.{}", sig.into_iter().collect::<String>()))
        }
        // Replayed: already accepted once.
        _ => Some(used.pick(rng).unwrap_or_else(|| "replay-not-ready".into())),
    }
}
