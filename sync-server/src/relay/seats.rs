//! Seats: how many connections the relay holds, in all and per key, so
//! that one key (or everyone at once) cannot open more than the operator
//! allows. A seat is taken at the upgrade, before any WebSocket exists, and
//! given back when the connection's task ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rapport_protocol::ids::PublicKey;

use super::lock;
use crate::access::Identity;

/// Connections held, in all and per key.
#[derive(Debug, Default)]
pub(crate) struct Seats {
    taken: Arc<Mutex<Taken>>,
}

#[derive(Debug, Default)]
struct Taken {
    total: usize,
    per_key: HashMap<PublicKey, usize>,
}

/// Why no seat was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoSeat {
    /// The relay holds its limit of connections.
    Full,
    /// This key holds its limit of connections.
    KeyFull,
}

/// A taken seat; dropping it gives it back.
#[derive(Debug)]
pub(crate) struct Seat {
    taken: Arc<Mutex<Taken>>,
    key: Option<PublicKey>,
}

impl Seats {
    /// A seat for `identity`, if the relay has fewer than `max` connections
    /// and the key fewer than `per_key`.
    pub(crate) fn take(
        &self,
        identity: Identity,
        max: usize,
        per_key: usize,
    ) -> Result<Seat, NoSeat> {
        let mut taken = lock(&self.taken);
        if taken.total >= max {
            return Err(NoSeat::Full);
        }
        let key = identity.key();
        if let Some(key) = key {
            let held = taken.per_key.entry(key).or_insert(0);
            if *held >= per_key {
                return Err(NoSeat::KeyFull);
            }
            *held += 1;
        }
        taken.total += 1;
        Ok(Seat {
            taken: Arc::clone(&self.taken),
            key,
        })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut taken = lock(&self.taken);
        taken.total -= 1;
        if let Some(key) = self.key
            && let Some(held) = taken.per_key.get_mut(&key)
        {
            *held -= 1;
            if *held == 0 {
                taken.per_key.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_bounded_in_all_and_per_key_and_come_back() {
        let seats = Seats::default();
        let ann = Identity::Key(PublicKey::from_bytes([1; 32]));
        let ben = Identity::Key(PublicKey::from_bytes([2; 32]));
        let first = seats.take(ann, 3, 2).unwrap();
        let _second = seats.take(ann, 3, 2).unwrap();
        assert_eq!(seats.take(ann, 3, 2).unwrap_err(), NoSeat::KeyFull);
        let _third = seats.take(ben, 3, 2).unwrap();
        assert_eq!(seats.take(ben, 3, 2).unwrap_err(), NoSeat::Full);
        drop(first);
        seats.take(ann, 3, 2).unwrap();
    }
}
