//! A token bucket per client address for form submissions.
//!
//! Each address may send `burst` submissions at once, then one more every
//! `refill_every`. IPv6 addresses count per /64 (one host usually holds a
//! whole /64); IPv4-mapped IPv6 addresses count as their IPv4 address.
//! Behind a reverse proxy every client has the proxy's address: the relay
//! does not trust `X-Forwarded-For`, so put the limit in the proxy instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::relay::lock;

/// Buckets kept before full (idle) ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    burst: f64,
    refill_every: Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(burst: u32, refill_every: Duration) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            refill_every: refill_every.max(Duration::from_millis(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `address`, or says how long until one is there.
    pub(crate) fn take(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let address = group(address);
        let mut buckets = lock(&self.buckets);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
        }
        let bucket = buckets.entry(address).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            return Ok(());
        }
        *bucket = Bucket { tokens, at: now };
        Err(self.refill_every.mul_f64(1.0 - tokens))
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at);
        (bucket.tokens + elapsed.as_secs_f64() / self.refill_every.as_secs_f64()).min(self.burst)
    }
}

/// The address a bucket counts for.
fn group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_period_per_address() {
        let limiter = RateLimiter::new(5, Duration::from_secs(6));
        let start = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(limiter.take(a, start), Ok(()));
        }
        let wait = limiter.take(a, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(6));
        assert_eq!(limiter.take(b, start), Ok(()), "another address");
        let later = start + Duration::from_secs(3);
        assert_eq!(limiter.take(a, later).unwrap_err(), Duration::from_secs(3));
        assert_eq!(limiter.take(a, start + Duration::from_secs(6)), Ok(()));
        assert!(limiter.take(a, start + Duration::from_secs(6)).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let now = Instant::now();
        assert!(limiter.take("2001:db8::1".parse().unwrap(), now).is_ok());
        assert!(limiter.take("2001:db8::2".parse().unwrap(), now).is_err());
        assert!(
            limiter
                .take("2001:db8:0:1::1".parse().unwrap(), now)
                .is_ok()
        );
        assert!(limiter.take("192.0.2.9".parse().unwrap(), now).is_ok());
        assert!(
            limiter
                .take("::ffff:192.0.2.9".parse().unwrap(), now)
                .is_err()
        );
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let limiter = RateLimiter::new(2, Duration::from_millis(1));
        let now = Instant::now();
        for i in 0..=PRUNE_ABOVE as u32 {
            let _ = limiter.take(IpAddr::V4(i.into()), now);
        }
        let later = now + Duration::from_secs(1);
        let _ = limiter.take("192.0.2.1".parse().unwrap(), later);
        assert!(lock(&limiter.buckets).len() < 10);
    }
}
