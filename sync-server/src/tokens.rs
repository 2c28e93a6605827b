//! The relay's judge of tokens: the protocol's [`Verifier`], and what it
//! needs to stay sound across a restart.
//!
//! The verifier forgets the nonces it saw when the relay stops. So after a
//! restart the relay refuses every token issued before the second it
//! started in (a token's `iat` is in whole seconds), and every token issued
//! at or before the latest `iat` it ever accepted ahead of its own clock
//! (within the allowed skew). That `iat` is kept in the data folder
//! (`token-horizon`), written durably before such a token is let in; a
//! client whose clock is right never moves it. The cost: after a restart,
//! a token issued no later than that horizon is refused until the clock
//! passes it, at most the allowed skew.
//!
//! Still open: a token issued and used in the second the relay restarts
//! in (before the restart) passes once more after it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rapport_protocol::ids::UnixMillis;
use rapport_protocol::token::{AuthError, Verified, Verifier, VerifierConfig};
use tracing::warn;

/// The file, in the data folder, holding the latest `iat` accepted ahead
/// of the relay's clock, in unix milliseconds, as decimal text.
const HORIZON_FILE: &str = "token-horizon";

/// The verifier, and the latest `iat` it accepted ahead of the clock.
#[derive(Debug)]
pub(crate) struct Tokens {
    verifier: Verifier,
    horizon: UnixMillis,
    path: PathBuf,
}

impl Tokens {
    /// The judge of tokens for the relay `relay_id` starting at `now` on
    /// `data_dir`, with at most `per_key` live tokens remembered per key.
    pub(crate) fn open(data_dir: &Path, relay_id: &str, per_key: usize, now: UnixMillis) -> Self {
        let path = data_dir.join(HORIZON_FILE);
        let mut config = VerifierConfig::new(relay_id);
        config.replay_share = per_key;
        let horizon = read_horizon(&path, now, config.max_clock_skew_secs);
        let second = now.as_secs().saturating_mul(1000);
        config.issued_after = Some(UnixMillis(second.max(horizon.0.saturating_add(1))));
        Self {
            verifier: Verifier::new(config),
            horizon,
            path,
        }
    }

    /// Checks `token` at `now` ([`Verifier::verify`]); one issued ahead of
    /// `now` and of the horizon moves the horizon, durably, first.
    pub(crate) fn verify(&mut self, token: &str, now: UnixMillis) -> Result<Verified, AuthError> {
        let verified = self.verifier.verify(token, now)?;
        let issued_at = verified.issued_at();
        if issued_at > now && issued_at > self.horizon {
            if let Err(e) = write_horizon(&self.path, issued_at) {
                warn!(path = %self.path.display(), error = %e, "cannot record a token's issue time");
                return Err(AuthError::Unrecorded);
            }
            self.horizon = issued_at;
        }
        Ok(verified)
    }
}

/// The horizon kept in `path`: none if there is no file. A file that
/// cannot be read counts as a horizon a whole clock skew after `now`,
/// past any token accepted before.
fn read_horizon(path: &Path, now: UnixMillis, skew_secs: u64) -> UnixMillis {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim().parse() {
            Ok(millis) => UnixMillis(millis),
            Err(_) => {
                warn!(path = %path.display(), "unreadable token horizon; refusing tokens issued within the clock skew");
                UnixMillis(now.0.saturating_add(skew_secs.saturating_mul(1000)))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => UnixMillis(0),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read the token horizon; refusing tokens issued within the clock skew");
            UnixMillis(now.0.saturating_add(skew_secs.saturating_mul(1000)))
        }
    }
}

/// Replaces the horizon in `path` with `horizon`, durably: a new file,
/// synced, renamed over the old one.
fn write_horizon(path: &Path, horizon: UnixMillis) -> std::io::Result<()> {
    let fresh = path.with_extension("new");
    let mut file = std::fs::File::create(&fresh)?;
    file.write_all(horizon.0.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use rapport_protocol::token::mint;

    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rapport-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn token(issued_at: u64) -> String {
        let key = SigningKey::from_bytes(&[3; 32]);
        mint(&key, "relay", UnixMillis(issued_at), 60, &mut rand::rng()).unwrap()
    }

    #[test]
    fn a_token_used_before_a_restart_stays_refused_after_it() {
        let dir = dir("token-horizon");
        let mut tokens = Tokens::open(&dir, "relay", 10, UnixMillis(T0 + 100));
        let (now, ahead) = (UnixMillis(T0 + 1_500), token(T0 + 30_000));
        tokens.verify(&ahead, now).unwrap();
        let used = token(T0 + 1_000);
        tokens.verify(&used, now).unwrap();

        let mut restarted = Tokens::open(&dir, "relay", 10, UnixMillis(T0 + 2_100));
        for token in [&ahead, &used] {
            let replayed = restarted.verify(token, UnixMillis(T0 + 2_100)).err();
            assert_eq!(replayed, Some(AuthError::IssuedBeforeStart));
        }
        let later = UnixMillis(T0 + 31_000);
        restarted.verify(&token(T0 + 31_000), later).unwrap();

        std::fs::write(dir.join(HORIZON_FILE), "garbled").unwrap();
        let garbled = Tokens::open(&dir, "relay", 10, UnixMillis(T0));
        assert_eq!(garbled.horizon, UnixMillis(T0 + 60_000));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
