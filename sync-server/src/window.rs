//! A count of events per key within a fixed window of time: at most
//! `limit` per window, the window starting at a key's first event. Used
//! to bound what one key or connection can make the relay do (audit
//! entries, presence messages) without keeping more than a small map.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys remembered before windows that have ended are forgotten.
const FORGET_AFTER_KEYS: usize = 4_096;

/// Events per key in the current window.
#[derive(Debug)]
pub(crate) struct WindowCounter<K> {
    window: Duration,
    seen: HashMap<K, (Instant, u32)>,
}

impl<K: Hash + Eq> WindowCounter<K> {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            seen: HashMap::new(),
        }
    }

    /// Counts one event of `key` at `now`; whether it is within `limit`.
    pub(crate) fn admit(&mut self, key: K, limit: u32, now: Instant) -> bool {
        if self.seen.len() > FORGET_AFTER_KEYS {
            let window = self.window;
            self.seen
                .retain(|_, (since, _)| now.duration_since(*since) < window);
        }
        let (since, count) = self.seen.entry(key).or_insert((now, 0));
        if now.duration_since(*since) >= self.window {
            *since = now;
            *count = 0;
        }
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_per_window_and_others_are_apart() {
        let mut counter = WindowCounter::new(Duration::from_secs(1));
        let start = Instant::now();
        assert!(counter.admit("a", 2, start));
        assert!(counter.admit("a", 2, start));
        assert!(!counter.admit("a", 2, start + Duration::from_millis(999)));
        assert!(counter.admit("b", 2, start));
        assert!(counter.admit("a", 2, start + Duration::from_secs(1)));
    }
}
