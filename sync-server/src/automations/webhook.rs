//! The webhook action: the event as JSON, POSTed with an HMAC-SHA256
//! signature of the body, retried with growing delays until the receiver
//! answers 2xx or the attempts run out.
//!
//! A receiver checks `X-Rapport-Signature: sha256=<hex>` against the HMAC
//! of the raw body under the workspace's webhook secret, and may use
//! `X-Rapport-Event` (the same on every retry) to drop repeats.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Rapport-Signature";
/// The header naming the event; the same on every attempt.
pub const EVENT_HEADER: &str = "X-Rapport-Event";
/// Attempts before a delivery is given up (about an hour and a half).
pub const MAX_ATTEMPTS: u32 = 14;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// How long to wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s…
/// at most 15 minutes.
pub fn retry_delay(attempts: u32) -> Duration {
    let seconds = 1_u64 << attempts.saturating_sub(1).min(20);
    Duration::from_secs(seconds.min(15 * 60))
}

/// A webhook waiting to be delivered, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event's id: the same on every attempt.
    pub event: String,
    pub workspace: String,
    pub rule: String,
    pub url: String,
    /// The JSON body, exactly as signed.
    pub body: String,
    pub attempts: u32,
    /// When to try next, in unix milliseconds.
    pub next_at: u64,
    pub last_error: Option<String>,
}

impl Delivery {
    /// Notes a failed attempt at `now`: when to try again, or `false` once
    /// the attempts are used up.
    pub fn failed(&mut self, error: String, now: u64) -> bool {
        self.attempts += 1;
        self.last_error = Some(error);
        let delay = u64::try_from(retry_delay(self.attempts).as_millis()).unwrap_or(u64::MAX);
        self.next_at = now.saturating_add(delay);
        self.attempts < MAX_ATTEMPTS
    }
}

/// One attempt: POSTs the body, signed. Blocking; call it off the runtime.
pub fn post(delivery: &Delivery, secret: &[u8]) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .post(&delivery.url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, &sign(secret, delivery.body.as_bytes()))
        .header(EVENT_HEADER, &delivery.event)
        .send(delivery.body.as_bytes())
        .map_err(|e| format!("{}: {e}", delivery.url))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {status}", delivery.url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_and_stop() {
        let delays: Vec<u64> = (1..=5).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16]);
        assert_eq!(retry_delay(40).as_secs(), 15 * 60, "capped");
        let mut delivery = Delivery {
            event: "e".into(),
            workspace: "w".into(),
            rule: "r".into(),
            url: "http://127.0.0.1:9/".into(),
            body: "{}".into(),
            attempts: 0,
            next_at: 0,
            last_error: None,
        };
        let mut tries = 0;
        while delivery.failed("down".into(), 1_000) {
            tries += 1;
        }
        assert_eq!(tries + 1, MAX_ATTEMPTS);
        assert_eq!(delivery.last_error.as_deref(), Some("down"));
        assert!(delivery.next_at > 1_000);
    }
}
