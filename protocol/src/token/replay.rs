//! The memory of accepted token nonces, bounded in size and in time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::TokenId;
use super::error::AuthError;
use crate::ids::{PublicKey, UnixMillis};

/// What identifies a token for replay: its key and its nonce. Keying on the
/// key too means nobody can burn someone else's nonce with their own token.
/// Fixed size (97 bytes), whatever the token said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ReplayKey {
    key: PublicKey,
    nonce: TokenId,
}

impl ReplayKey {
    pub(super) const fn new(key: PublicKey, nonce: TokenId) -> Self {
        Self { key, nonce }
    }
}

/// Nonces of accepted tokens, each kept until its token could no longer pass
/// the time checks (its `exp` plus the clock skew), and no more than
/// `capacity` of them.
///
/// Two ordered indexes: by key, to find replays, and by deadline, to forget
/// the oldest first. Ordered maps rather than hash maps: the keys come from
/// the network, and a `BTreeMap` needs neither a random hash seed (which
/// would come from the OS RNG) nor trust in a hash function, and stays
/// `O(log n)` whatever the keys are.
pub(super) struct ReplayCache {
    capacity: usize,
    /// How many nonces one key may hold: one key cannot fill the cache
    /// and lock everyone else out.
    per_key: usize,
    deadlines: BTreeMap<ReplayKey, UnixMillis>,
    by_deadline: BTreeSet<(UnixMillis, ReplayKey)>,
    held: BTreeMap<PublicKey, usize>,
}

impl ReplayCache {
    pub(super) const fn new(capacity: usize, per_key: usize) -> Self {
        Self {
            capacity,
            per_key,
            deadlines: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
            held: BTreeMap::new(),
        }
    }

    /// How many nonces are remembered.
    pub(super) fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Forgets every nonce whose deadline is `now` or earlier. Each nonce is
    /// forgotten once, so the cost is `O(log n)` per nonce ever remembered.
    pub(super) fn purge(&mut self, now: UnixMillis) {
        while let Some((deadline, _)) = self.by_deadline.first()
            && *deadline <= now
        {
            if let Some((_, key)) = self.by_deadline.pop_first() {
                self.deadlines.remove(&key);
                if let Some(count) = self.held.get_mut(&key.key) {
                    *count -= 1;
                    if *count == 0 {
                        self.held.remove(&key.key);
                    }
                }
            }
        }
    }

    /// Remembers `key` until `deadline`, unless it is remembered already
    /// ([`AuthError::Replayed`]), its key holds its share of the cache
    /// already ([`AuthError::TooManyTokens`]) or the cache is full
    /// ([`AuthError::ReplayCacheFull`]). Call [`ReplayCache::purge`] first.
    pub(super) fn insert(&mut self, key: ReplayKey, deadline: UnixMillis) -> Result<(), AuthError> {
        if self.deadlines.contains_key(&key) {
            return Err(AuthError::Replayed);
        }
        let held = self.held.get(&key.key).copied().unwrap_or(0);
        if held >= self.per_key {
            return Err(AuthError::TooManyTokens {
                share: self.per_key,
            });
        }
        if self.len() >= self.capacity {
            return Err(AuthError::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        self.deadlines.insert(key, deadline);
        self.by_deadline.insert((deadline, key));
        *self.held.entry(key.key).or_insert(0) += 1;
        Ok(())
    }
}

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ReplayKey {
        let nonce = TokenId::from_slice(&[n; 16]).unwrap();
        ReplayKey::new(PublicKey::from_bytes([0; 32]), nonce)
    }

    #[test]
    fn a_nonce_is_refused_until_its_deadline() {
        let mut cache = ReplayCache::new(10, 10);
        cache.insert(key(1), UnixMillis(100)).unwrap();
        cache.purge(UnixMillis(99));
        assert_eq!(
            cache.insert(key(1), UnixMillis(200)),
            Err(AuthError::Replayed)
        );
        assert_eq!(cache.len(), 1);
        cache.purge(UnixMillis(100));
        assert_eq!(cache.len(), 0);
        cache.insert(key(1), UnixMillis(200)).unwrap();
    }

    #[test]
    fn the_same_nonce_under_another_key_is_another_token() {
        let mut cache = ReplayCache::new(10, 10);
        cache.insert(key(1), UnixMillis(100)).unwrap();
        let nonce = TokenId::from_slice(&[1; 16]).unwrap();
        cache
            .insert(
                ReplayKey::new(PublicKey::from_bytes([9; 32]), nonce),
                UnixMillis(100),
            )
            .unwrap();
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_full_cache_refuses_until_something_expires() {
        let mut cache = ReplayCache::new(2, 10);
        cache.insert(key(1), UnixMillis(300)).unwrap();
        cache.insert(key(2), UnixMillis(100)).unwrap();
        let full = Err(AuthError::ReplayCacheFull { capacity: 2 });
        assert_eq!(cache.insert(key(3), UnixMillis(400)), full);
        // A replay is still told apart from a full cache.
        assert_eq!(
            cache.insert(key(1), UnixMillis(300)),
            Err(AuthError::Replayed)
        );
        cache.purge(UnixMillis(100));
        assert_eq!(cache.len(), 1);
        cache.insert(key(3), UnixMillis(400)).unwrap();
        assert_eq!(cache.insert(key(4), UnixMillis(400)), full);
        cache.purge(UnixMillis(1000));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_zero_capacity_cache_refuses_everything() {
        let mut cache = ReplayCache::new(0, 10);
        assert_eq!(
            cache.insert(key(1), UnixMillis(1)),
            Err(AuthError::ReplayCacheFull { capacity: 0 })
        );
    }

    #[test]
    fn one_key_cannot_take_more_than_its_share() {
        let nonce = |n: u8| TokenId::from_slice(&[n; 16]).unwrap();
        let of = |k: u8, n: u8| ReplayKey::new(PublicKey::from_bytes([k; 32]), nonce(n));
        let mut cache = ReplayCache::new(10, 3);
        for n in 0..3 {
            cache.insert(of(1, n), UnixMillis(100)).unwrap();
        }
        assert_eq!(
            cache.insert(of(1, 9), UnixMillis(100)),
            Err(AuthError::TooManyTokens { share: 3 })
        );
        cache.insert(of(2, 9), UnixMillis(100)).unwrap();
        cache.purge(UnixMillis(100));
        cache.insert(of(1, 9), UnixMillis(200)).unwrap();
    }
}
