//! The registry binding automerge actor ids to the keys that may use them.
//!
//! The first change the relay accepts from an unknown actor binds that actor
//! to the connection's key; from then on a change by that actor from any
//! other key is refused. An actor longer than 32 bytes whose first 32 bytes
//! are a valid ed25519 public key is self-describing (rapport's clients make
//! their actors this way): it binds only to the key it starts with. Stock
//! automerge-repo clients use random 16-byte actors and work unchanged.

use std::collections::HashMap;

use rapport_protocol::ids::PublicKey;
use rapport_protocol::wire::RejectReason;

#[derive(Debug, Clone, Copy)]
struct Binding {
    key: PublicKey,
    /// Whether the binding is in the database yet.
    stored: bool,
}

/// Every binding, in memory; loaded whole at start.
#[derive(Debug, Default)]
pub(crate) struct ActorRegistry {
    bindings: HashMap<Vec<u8>, Binding>,
}

impl ActorRegistry {
    pub(crate) fn from_stored(bindings: impl IntoIterator<Item = (Vec<u8>, PublicKey)>) -> Self {
        Self {
            bindings: bindings
                .into_iter()
                .map(|(actor, key)| (actor, Binding { key, stored: true }))
                .collect(),
        }
    }

    /// The key `actor` is bound to, or names if it is self-describing.
    pub(crate) fn key_of(&self, actor: &[u8]) -> Option<PublicKey> {
        self.bindings
            .get(actor)
            .map(|binding| binding.key)
            .or_else(|| PublicKey::of_actor(actor))
    }

    /// May `key` write changes by `actor`? Binds an unknown actor to `key`
    /// at once, so that a second key racing for it is refused.
    pub(crate) fn check(&mut self, actor: &[u8], key: PublicKey) -> Result<(), RejectReason> {
        if let Some(binding) = self.bindings.get(actor) {
            return if binding.key == key {
                Ok(())
            } else {
                Err(RejectReason::ActorOfAnotherKey)
            };
        }
        if let Some(prefix) = PublicKey::of_actor(actor)
            && prefix != key
        {
            return Err(RejectReason::ActorOfAnotherKey);
        }
        self.bindings
            .insert(actor.to_vec(), Binding { key, stored: false });
        Ok(())
    }

    /// Bindings of these actors that are not stored yet.
    pub(crate) fn unstored<'a>(
        &self,
        actors: impl Iterator<Item = &'a [u8]>,
    ) -> Vec<(Vec<u8>, PublicKey)> {
        let mut out: Vec<(Vec<u8>, PublicKey)> = Vec::new();
        for actor in actors {
            if let Some(binding) = self.bindings.get(actor)
                && !binding.stored
                && !out.iter().any(|(a, _)| a == actor)
            {
                out.push((actor.to_vec(), binding.key));
            }
        }
        out
    }

    pub(crate) fn mark_stored(&mut self, actors: &[(Vec<u8>, PublicKey)]) {
        for (actor, _) in actors {
            if let Some(binding) = self.bindings.get_mut(actor) {
                binding.stored = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from(ed25519_dalek::SigningKey::from_bytes(&[n; 32]).verifying_key())
    }

    #[test]
    fn first_use_binds_and_others_are_refused() {
        let mut registry = ActorRegistry::default();
        let actor = [7u8; 16];
        assert_eq!(registry.check(&actor, key(1)), Ok(()));
        assert_eq!(registry.check(&actor, key(1)), Ok(()));
        assert_eq!(
            registry.check(&actor, key(2)),
            Err(RejectReason::ActorOfAnotherKey)
        );
        assert_eq!(registry.unstored([&actor[..]].into_iter()).len(), 1);
    }

    #[test]
    fn a_self_describing_actor_binds_only_to_its_key() {
        let mut registry = ActorRegistry::default();
        let mut actor = key(1).as_bytes().to_vec();
        actor.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            registry.check(&actor, key(2)),
            Err(RejectReason::ActorOfAnotherKey)
        );
        assert_eq!(registry.check(&actor, key(1)), Ok(()));
    }
}
