//! The webhook action: the event as JSON, POSTed with an HMAC-SHA256
//! signature of the body, retried with growing delays until the receiver
//! answers 2xx or the attempts run out.
//!
//! A receiver checks `X-Rapport-Signature: sha256=<hex>` against the HMAC
//! of the raw body under the workspace's webhook secret, and may use
//! `X-Rapport-Event` (the same on every retry) to drop repeats.
//!
//! A webhook goes only to a public address: the host is resolved, and a
//! loopback, private, link-local, unique-local or otherwise special address
//! is refused (the addresses checked are the ones connected to, so a name
//! that changes its answer between the check and the connection gains
//! nothing), unless the operator allows the host (`--webhook-allow`).
//! Redirects are not followed. What is recorded of a failure is its kind
//! and status, never the receiver's own words.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ureq::config::Config as AgentConfig;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

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

/// One attempt: POSTs the body, signed, to a public address (or a host
/// in `allow`). Blocking; call it off the runtime. The error is a short
/// description a staff member may read.
pub fn post(delivery: &Delivery, secret: &[u8], allow: &Arc<[String]>) -> Result<(), String> {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build();
    let resolver = PublicOnly {
        allow: Arc::clone(allow),
    };
    let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), resolver);
    let response = agent
        .post(&delivery.url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, &sign(secret, delivery.body.as_bytes()))
        .header(EVENT_HEADER, &delivery.event)
        .send(delivery.body.as_bytes())
        .map_err(|e| describe(&e))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered HTTP {}", status.as_u16()))
    }
}

/// A failure as recorded: its kind, not the words of the receiver.
fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Other(refusal) if refusal.is::<NotPublic>() => refusal.to_string(),
        ureq::Error::Timeout(_) => "the receiver did not answer in time".into(),
        ureq::Error::HostNotFound => "the receiver's host name does not resolve".into(),
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed => {
            "the receiver cannot be reached".into()
        }
        ureq::Error::BadUri(_) => "the webhook address is not a valid URL".into(),
        _ => "the delivery failed".into(),
    }
}

/// A webhook address that resolves to a non-public address.
#[derive(Debug, thiserror::Error)]
#[error(
    "refused: {0} is not a public address (an operator may allow the host with --webhook-allow)"
)]
struct NotPublic(IpAddr);

/// Resolves as usual, then refuses any address that is not public, unless
/// the URL's host (or host:port) is allowed.
#[derive(Debug)]
struct PublicOnly {
    allow: Arc<[String]>,
}

impl Resolver for PublicOnly {
    fn resolve(
        &self,
        uri: &Uri,
        config: &AgentConfig,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        let allowed = uri.authority().is_some_and(|authority| {
            self.allow
                .iter()
                .any(|a| a == authority.host() || a == authority.as_str())
        });
        if !allowed && let Some(bad) = addrs.iter().find(|addr| !is_public(addr.ip())) {
            return Err(ureq::Error::Other(Box::new(NotPublic(bad.ip()))));
        }
        Ok(addrs)
    }
}

/// Whether `ip` is an address on the public internet: not loopback,
/// private, link-local, unique-local, shared (CGNAT), documentation,
/// unspecified, broadcast or multicast; an IPv4-mapped IPv6 address is
/// judged as its IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
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

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_webhook_to_a_private_address_is_refused_before_it_is_sent() {
        let delivery = Delivery {
            event: "e".into(),
            workspace: "w".into(),
            rule: "r".into(),
            url: "http://127.0.0.1:9/hook".into(),
            body: "{}".into(),
            attempts: 0,
            next_at: 0,
            last_error: None,
        };
        let none: Arc<[String]> = Arc::from(Vec::new());
        let error = post(&delivery, b"k", &none).unwrap_err();
        assert!(error.contains("not a public address"), "{error}");
        // An allowed host is tried (and here, nothing listens).
        let allowed: Arc<[String]> = Arc::from(vec!["127.0.0.1:9".to_owned()]);
        let error = post(&delivery, b"k", &allowed).unwrap_err();
        assert!(!error.contains("not a public address"), "{error}");
    }
}
