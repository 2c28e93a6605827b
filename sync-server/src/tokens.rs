//! The relay's judge of tokens: the protocol's [`Verifier`], and what it
//! needs to stay sound across a restart.
//!
//! The verifier forgets the nonces it saw when the relay stops. So after a
//! restart the relay refuses every token issued before the second it
//! started in (a token's `iat` is in whole seconds), and every token a key
//! issued at or before the latest `iat` it accepted from that key ahead of
//! its own clock (within the allowed skew). Those times, one a key, are
//! kept in the data folder (`token-horizon`), written durably before such
//! a token is let in; a client whose clock is right never adds one. The
//! cost: after a restart, a key that presented a token from ahead of the
//! clock has its tokens issued no later than that refused until the clock
//! passes it, at most the allowed skew; every other key is let in at once.
//!
//! The file holds at most [`MAX_KEYS`] keys; a key's entry goes once the
//! clock has passed it (the second a restart starts in covers it then).
//! Beyond that many, the rest share one horizon that holds for every key
//! after a restart, as does a file that cannot be read.
//!
//! Still open: a token issued and used in the second the relay restarts
//! in (before the restart) passes once more after it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rapport_protocol::ids::{PublicKey, UnixMillis};
use rapport_protocol::token::{AuthError, Verified, Verifier, VerifierConfig};
use tracing::warn;

/// The file, in the data folder: the shared horizon on the first line,
/// then one line a key, `<key> <iat>`; times in unix milliseconds, as
/// decimal text.
const HORIZON_FILE: &str = "token-horizon";
/// Keys with a token accepted ahead of the clock, at most.
const MAX_KEYS: usize = 1024;

/// The verifier, and the latest `iat` it accepted ahead of the clock from
/// each key.
#[derive(Debug)]
pub(crate) struct Tokens {
    verifier: Verifier,
    /// As the file holds them: from before the start, and since.
    horizons: Horizons,
    /// As the file held them at the start: a key's tokens issued no later
    /// are refused.
    before_start: BTreeMap<PublicKey, UnixMillis>,
    path: PathBuf,
}

/// The latest `iat` accepted ahead of the clock, per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Horizons {
    keys: BTreeMap<PublicKey, UnixMillis>,
    /// For every key: the keys beyond [`MAX_KEYS`], or an unreadable file.
    shared: UnixMillis,
}

impl Tokens {
    /// The judge of tokens for the relay `relay_id` starting at `now` on
    /// `data_dir`, with at most `per_key` live tokens remembered per key.
    pub(crate) fn open(data_dir: &Path, relay_id: &str, per_key: usize, now: UnixMillis) -> Self {
        let path = data_dir.join(HORIZON_FILE);
        let mut config = VerifierConfig::new(relay_id);
        config.replay_share = per_key;
        let mut horizons = read_horizons(&path, now, config.max_clock_skew_secs);
        let second = now.as_secs().saturating_mul(1000);
        // Tokens issued before the start second are refused anyway.
        horizons.keys.retain(|_, at| at.0 >= second);
        config.issued_after = Some(UnixMillis(second.max(horizons.shared.0.saturating_add(1))));
        Self {
            verifier: Verifier::new(config),
            before_start: horizons.keys.clone(),
            horizons,
            path,
        }
    }

    /// Checks `token` at `now` ([`Verifier::verify`]); one its key issued
    /// no later than its horizon before the start is refused, and one
    /// issued ahead of `now` and of its key's horizon moves that horizon,
    /// durably, first.
    pub(crate) fn verify(&mut self, token: &str, now: UnixMillis) -> Result<Verified, AuthError> {
        let verified = self.verifier.verify(token, now)?;
        let (key, issued_at) = (verified.public_key(), verified.issued_at());
        if self.before_start.get(&key).is_some_and(|h| issued_at <= *h) {
            return Err(AuthError::IssuedBeforeStart);
        }
        if issued_at > now && self.horizons.keys.get(&key).is_none_or(|h| issued_at > *h) {
            let mut next = self.horizons.clone();
            next.record(key, issued_at, now);
            if let Err(e) = write_horizons(&self.path, &next) {
                warn!(path = %self.path.display(), error = %e, "cannot record a token's issue time");
                return Err(AuthError::Unrecorded);
            }
            self.horizons = next;
        }
        Ok(verified)
    }
}

impl Horizons {
    /// Notes `key`'s token issued at `issued_at`, at `now`: the keys whose
    /// horizon the clock has passed go, and a key beyond [`MAX_KEYS`]
    /// moves the shared horizon instead.
    fn record(&mut self, key: PublicKey, issued_at: UnixMillis, now: UnixMillis) {
        // A whole second past: the second a restart starts in is later.
        self.keys.retain(|_, at| at.0.saturating_add(1000) > now.0);
        if self.keys.len() < MAX_KEYS || self.keys.contains_key(&key) {
            let at = self.keys.entry(key).or_insert(issued_at);
            *at = (*at).max(issued_at);
        } else {
            self.shared = self.shared.max(issued_at);
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let shared = UnixMillis(lines.next()?.trim().parse().ok()?);
        let mut keys = BTreeMap::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let (key, at) = line.trim().split_once(' ')?;
            keys.insert(key.parse().ok()?, UnixMillis(at.parse().ok()?));
        }
        Some(Self { keys, shared })
    }

    fn text(&self) -> String {
        let mut text = format!("{}\n", self.shared.0);
        for (key, at) in &self.keys {
            text.push_str(&format!("{key} {}\n", at.0));
        }
        text
    }
}

/// The horizons kept in `path`: none if there is no file. A file that
/// cannot be read counts as a shared horizon a whole clock skew after
/// `now`, past any token accepted before.
fn read_horizons(path: &Path, now: UnixMillis, skew_secs: u64) -> Horizons {
    let unreadable = Horizons {
        keys: BTreeMap::new(),
        shared: UnixMillis(now.0.saturating_add(skew_secs.saturating_mul(1000))),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Horizons::parse(&text).unwrap_or_else(|| {
            warn!(path = %path.display(), "unreadable token horizon; refusing tokens issued within the clock skew");
            unreadable
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Horizons::default(),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read the token horizon; refusing tokens issued within the clock skew");
            unreadable
        }
    }
}

/// Replaces the horizons in `path` with `horizons`, durably: a new file,
/// synced, renamed over the old one.
fn write_horizons(path: &Path, horizons: &Horizons) -> std::io::Result<()> {
    let fresh = path.with_extension("new");
    let mut file = std::fs::File::create(&fresh)?;
    file.write_all(horizons.text().as_bytes())?;
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
        token_of(3, issued_at)
    }

    fn token_of(seed: u8, issued_at: u64) -> String {
        let key = SigningKey::from_bytes(&[seed; 32]);
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
        assert_eq!(garbled.horizons.shared, UnixMillis(T0 + 60_000));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_token_from_ahead_of_the_clock_holds_back_its_own_key_alone() {
        let dir = dir("token-horizon-per-key");
        let mut tokens = Tokens::open(&dir, "relay", 10, UnixMillis(T0));
        tokens
            .verify(&token(T0 + 50_000), UnixMillis(T0 + 1_000))
            .unwrap();

        let now = UnixMillis(T0 + 2_000);
        let mut restarted = Tokens::open(&dir, "relay", 10, now);
        let held = restarted.verify(&token(T0 + 2_000), now).err();
        assert_eq!(held, Some(AuthError::IssuedBeforeStart));
        restarted.verify(&token_of(4, T0 + 2_000), now).unwrap();
        restarted.verify(&token(T0 + 51_000), now).unwrap();

        // Once the clock has passed a key's horizon, its entry goes.
        let later = UnixMillis(T0 + 60_000);
        restarted.verify(&token_of(5, T0 + 70_000), later).unwrap();
        let keys: Vec<_> = restarted.horizons.keys.values().copied().collect();
        assert_eq!(keys, [UnixMillis(T0 + 70_000)]);
        let text = std::fs::read_to_string(dir.join(HORIZON_FILE)).unwrap();
        assert_eq!(Horizons::parse(&text), Some(restarted.horizons.clone()));
        assert_eq!(
            Horizons::parse("1000\n"),
            Some(Horizons {
                shared: UnixMillis(1000),
                ..Horizons::default()
            })
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
