//! [`Verifier`]: the relay's side of the token, with its replay memory.

use super::error::AuthError;
use super::jwt::{self, Claims};
use super::replay::{ReplayCache, ReplayKey};
use super::{
    DEFAULT_CLOCK_SKEW_SECS, DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_SHARE, MAX_LIFETIME_SECS,
    Verified,
};
use crate::ids::UnixMillis;

/// How a [`Verifier`] judges tokens. Start from [`VerifierConfig::new`] and
/// change the fields you need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// The relay's id: tokens must name it in `aud`.
    pub audience: String,
    /// How far the token maker's clock may be from ours, both ways.
    pub max_clock_skew_secs: u64,
    /// The longest `exp - iat` accepted.
    pub max_lifetime_secs: u64,
    /// How many live tokens the verifier remembers before it refuses new
    /// ones with [`AuthError::ReplayCacheFull`]. Each takes about 250 bytes.
    pub replay_capacity: usize,
    /// How many of those one key may hold before its new tokens are
    /// refused with [`AuthError::TooManyTokens`].
    pub replay_share: usize,
    /// Tokens issued (`iat`) before this are refused
    /// ([`AuthError::IssuedBeforeStart`]): a relay that does not remember
    /// the nonces it saw before a restart sets it to when it started, so a
    /// token captured before the restart cannot be played again.
    pub issued_after: Option<UnixMillis>,
}

impl VerifierConfig {
    /// The defaults for a relay called `audience`: 60 s of clock skew,
    /// lifetimes up to 300 s, 100 000 live tokens remembered, at most
    /// 2 000 of them one key's, any time of issue.
    pub fn new(audience: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            max_clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            max_lifetime_secs: MAX_LIFETIME_SECS,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            replay_share: DEFAULT_REPLAY_SHARE,
            issued_after: None,
        }
    }
}

/// Checks connection tokens and remembers the ones it accepted, so each is
/// accepted once. One per relay; it is the only source of [`Verified`].
///
/// Its clock never runs backwards: a `now` earlier than one seen before is
/// taken as the latest `now` seen, so a nonce it has forgotten (because its
/// token expired) can never pass the time checks again.
#[derive(Debug)]
pub struct Verifier {
    config: VerifierConfig,
    replay: ReplayCache,
    latest_now: UnixMillis,
}

impl Verifier {
    /// A verifier that has accepted no token yet.
    pub const fn new(config: VerifierConfig) -> Self {
        let replay = ReplayCache::new(config.replay_capacity, config.replay_share);
        Self {
            config,
            replay,
            latest_now: UnixMillis(0),
        }
    }

    /// How this verifier judges tokens.
    pub const fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// How many accepted tokens are remembered: those whose `exp` plus the
    /// clock skew is after the latest `now` seen. At most
    /// [`VerifierConfig::replay_capacity`].
    pub fn replay_cache_len(&self) -> usize {
        self.replay.len()
    }

    /// Checks `token` at time `now` and, if it passes, remembers it so it
    /// cannot be used again.
    ///
    /// The checks, in order: length, the three segments, header, claims,
    /// signature, audience, time window, replay. The replay memory changes
    /// only for a token that passed every other check.
    pub fn verify(&mut self, token: &str, now: UnixMillis) -> Result<Verified, AuthError> {
        let now = self.advance_clock(now);
        let token = jwt::parse(token)?;
        token
            .claims
            .key
            .verify_strict(token.signing_input.as_bytes(), &token.signature)
            .map_err(|_| AuthError::BadSignature)?;
        let claims = token.claims;
        if !claims.audience.contains(&self.config.audience) {
            return Err(AuthError::WrongAudience {
                expected: self.config.audience.clone(),
                found: claims.audience.shown(),
            });
        }
        if self
            .config
            .issued_after
            .is_some_and(|start| millis(claims.issued_at) < start)
        {
            return Err(AuthError::IssuedBeforeStart);
        }
        let deadline = self.check_time(&claims, now)?;
        self.replay
            .insert(ReplayKey::new(claims.subject, claims.token_id), deadline)?;
        Ok(Verified {
            public_key: claims.subject,
            issued_at: millis(claims.issued_at),
            expires_at: millis(claims.expires_at),
            token_id: claims.token_id,
        })
    }

    /// Moves the clock to `now` unless that is earlier, forgets the nonces
    /// whose deadline has passed, and returns the clock.
    fn advance_clock(&mut self, now: UnixMillis) -> UnixMillis {
        self.latest_now = self.latest_now.max(now);
        self.replay.purge(self.latest_now);
        self.latest_now
    }

    /// Valid iff `exp > iat`, `exp - iat <= max_lifetime`,
    /// `max(iat, nbf) - skew <= now` and `now < exp + skew`. Returns
    /// `exp + skew`, when the token stops being valid.
    fn check_time(&self, claims: &Claims, now: UnixMillis) -> Result<UnixMillis, AuthError> {
        let skew = u128::from(self.config.max_clock_skew_secs) * 1000;
        let max_lifetime = u128::from(self.config.max_lifetime_secs) * 1000;
        let (issued_at, expires_at) = (claims.issued_at, claims.expires_at);
        if expires_at <= issued_at {
            return Err(AuthError::ExpiresBeforeIssued);
        }
        let lifetime = expires_at - issued_at;
        if lifetime > max_lifetime {
            return Err(AuthError::LifetimeTooLong {
                lifetime_millis: millis(lifetime).0,
                max_secs: self.config.max_lifetime_secs,
            });
        }
        let valid_from = claims
            .not_before
            .map_or(issued_at, |nbf| nbf.max(issued_at));
        let now = u128::from(now.0);
        if valid_from > now + skew {
            return Err(AuthError::NotYetValid {
                valid_from: millis(valid_from),
            });
        }
        let deadline = expires_at + skew;
        if now >= deadline {
            return Err(AuthError::Expired {
                expired_at: millis(expires_at),
            });
        }
        Ok(millis(deadline))
    }
}

/// Milliseconds as a [`UnixMillis`], saturating.
fn millis(millis: u128) -> UnixMillis {
    UnixMillis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::ids::PublicKey;

    const T0: u64 = 1_700_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[2; 32])
    }

    /// A token for `relay` with the given times (unix seconds) and nonce.
    fn token(iat: u64, exp: u64, nonce: u8) -> String {
        let sub = PublicKey::from(key().verifying_key());
        let jti = jwt::encode([nonce; 16]);
        let claims =
            format!(r#"{{"sub":"{sub}","aud":"relay","iat":{iat},"exp":{exp},"jti":"{jti}"}}"#);
        jwt::assemble(&key(), jwt::HEADER, &claims)
    }

    fn verifier() -> Verifier {
        Verifier::new(VerifierConfig::new("relay"))
    }

    fn at_secs(secs: u64) -> UnixMillis {
        UnixMillis(secs * 1000)
    }

    #[test]
    fn the_window_opens_at_iat_minus_skew() {
        let err = verifier().verify(&token(T0, T0 + 10, 1), UnixMillis(T0 * 1000 - 60_001));
        assert_eq!(
            err,
            Err(AuthError::NotYetValid {
                valid_from: at_secs(T0)
            })
        );
        verifier()
            .verify(&token(T0, T0 + 10, 1), at_secs(T0 - 60))
            .unwrap();
    }

    #[test]
    fn the_window_closes_at_exp_plus_skew() {
        let verified = verifier()
            .verify(&token(T0, T0 + 10, 1), UnixMillis((T0 + 70) * 1000 - 1))
            .unwrap();
        assert_eq!(verified.expires_at(), at_secs(T0 + 10));
        assert_eq!(verified.issued_at(), at_secs(T0));
        let err = verifier().verify(&token(T0, T0 + 10, 1), at_secs(T0 + 70));
        assert_eq!(
            err,
            Err(AuthError::Expired {
                expired_at: at_secs(T0 + 10)
            })
        );
    }

    #[test]
    fn lifetimes_must_be_positive_and_at_most_the_maximum() {
        verifier()
            .verify(&token(T0, T0 + 300, 1), at_secs(T0))
            .unwrap();
        let err = verifier().verify(&token(T0, T0 + 301, 1), at_secs(T0));
        assert_eq!(
            err,
            Err(AuthError::LifetimeTooLong {
                lifetime_millis: 301_000,
                max_secs: 300
            })
        );
        let err = verifier().verify(&token(T0, T0, 1), at_secs(T0));
        assert_eq!(err, Err(AuthError::ExpiresBeforeIssued));
        let err = verifier().verify(&token(u64::MAX, 0, 1), at_secs(T0));
        assert_eq!(err, Err(AuthError::ExpiresBeforeIssued));
    }

    #[test]
    fn huge_times_do_not_overflow() {
        let err = verifier().verify(&token(u64::MAX - 10, u64::MAX, 1), at_secs(T0));
        assert!(matches!(err, Err(AuthError::NotYetValid { .. })), "{err:?}");
        let mut verifier = verifier();
        verifier.config.max_clock_skew_secs = u64::MAX;
        verifier
            .verify(&token(T0, T0 + 1, 1), UnixMillis(u64::MAX))
            .unwrap();
    }

    #[test]
    fn a_token_is_accepted_once_and_forgotten_when_it_expires() {
        let mut verifier = verifier();
        let jwt = token(T0, T0 + 10, 1);
        verifier.verify(&jwt, at_secs(T0)).unwrap();
        assert_eq!(verifier.replay_cache_len(), 1);
        assert_eq!(
            verifier.verify(&jwt, at_secs(T0 + 69)),
            Err(AuthError::Replayed)
        );
        assert_eq!(verifier.replay_cache_len(), 1);
        let err = verifier.verify(&jwt, at_secs(T0 + 70));
        assert!(matches!(err, Err(AuthError::Expired { .. })), "{err:?}");
        assert_eq!(verifier.replay_cache_len(), 0);
    }

    #[test]
    fn a_clock_that_steps_back_does_not_revive_a_forgotten_token() {
        let mut verifier = verifier();
        let jwt = token(T0, T0 + 10, 1);
        verifier.verify(&jwt, at_secs(T0)).unwrap();
        verifier
            .verify(&token(T0 + 100, T0 + 110, 2), at_secs(T0 + 100))
            .unwrap();
        assert_eq!(verifier.replay_cache_len(), 1);
        let err = verifier.verify(&jwt, at_secs(T0));
        assert!(matches!(err, Err(AuthError::Expired { .. })), "{err:?}");
    }

    #[test]
    fn refused_tokens_are_not_remembered() {
        let mut verifier = verifier();
        let other = SigningKey::from_bytes(&[3; 32]);
        let sub = PublicKey::from(key().verifying_key());
        let jti = jwt::encode([1; 16]);
        let claims = format!(
            r#"{{"sub":"{sub}","aud":"relay","iat":{T0},"exp":{},"jti":"{jti}"}}"#,
            T0 + 1
        );
        let forged = jwt::assemble(&other, jwt::HEADER, &claims);
        assert_eq!(
            verifier.verify(&forged, at_secs(T0)),
            Err(AuthError::BadSignature)
        );
        let err = verifier.verify(&token(T0, T0 + 10, 1), at_secs(T0 + 100));
        assert!(matches!(err, Err(AuthError::Expired { .. })), "{err:?}");
        assert_eq!(verifier.replay_cache_len(), 0);
    }

    #[test]
    fn the_audience_must_match() {
        let mut verifier = Verifier::new(VerifierConfig::new("other"));
        let err = verifier.verify(&token(T0, T0 + 10, 1), at_secs(T0));
        assert_eq!(
            err,
            Err(AuthError::WrongAudience {
                expected: "other".into(),
                found: "relay".into()
            })
        );
    }

    #[test]
    fn tokens_issued_before_the_start_are_refused() {
        let mut config = VerifierConfig::new("relay");
        config.issued_after = Some(at_secs(T0));
        let mut verifier = Verifier::new(config);
        assert_eq!(
            verifier.verify(&token(T0 - 1, T0 + 60, 1), at_secs(T0 + 1)),
            Err(AuthError::IssuedBeforeStart)
        );
        assert!(
            verifier
                .verify(&token(T0, T0 + 60, 2), at_secs(T0 + 1))
                .is_ok()
        );
        // A token whose iat is beyond the skew in the future is refused too.
        assert!(matches!(
            verifier.verify(&token(T0 + 120, T0 + 180, 3), at_secs(T0)),
            Err(AuthError::NotYetValid { .. })
        ));
    }

    #[test]
    fn nbf_later_than_iat_is_honoured() {
        let sub = PublicKey::from(key().verifying_key());
        let jti = jwt::encode([1; 16]);
        let claims = format!(
            r#"{{"sub":"{sub}","aud":"relay","iat":{T0},"nbf":{},"exp":{},"jti":"{jti}"}}"#,
            T0 + 100,
            T0 + 200
        );
        let jwt = jwt::assemble(&key(), jwt::HEADER, &claims);
        let err = verifier().verify(&jwt, at_secs(T0));
        assert_eq!(
            err,
            Err(AuthError::NotYetValid {
                valid_from: at_secs(T0 + 100)
            })
        );
        verifier().verify(&jwt, at_secs(T0 + 40)).unwrap();
    }
}
