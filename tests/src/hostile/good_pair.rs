//! Two well-behaved peers that keep editing one document while the relay
//! is under attack: their round trips must stay quick and their document
//! must stay theirs.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc};
use ed25519_dalek::SigningKey;

use super::GOOD;
use crate::peer::{TestPeer, actor_of, key};
use crate::relay::TestRelay;

/// A generous bound on one good round trip. Not a latency target: it
/// catches a relay that stalls its good peers.
pub const BOUND: Duration = Duration::from_secs(5);

/// Two peers that take turns editing [`GOOD`]; each edit appends its round
/// number to a list, so that at the end every round must be there.
#[derive(Debug)]
pub struct GoodPair {
    pub alice: TestPeer,
    pub bob: TestPeer,
    /// Rounds done so far.
    pub rounds: u64,
    /// The slowest round trip so far.
    pub slowest: Duration,
}

impl GoodPair {
    /// Alice (key 1) and Bob (key 2) connect and share [`GOOD`] through a
    /// workspace of Alice's whose staff are Bob and the keys `also` (a
    /// newcomer, insiders among the attackers).
    pub async fn start(relay: &TestRelay, also: &[&SigningKey]) -> Result<Self> {
        let bob_key = key(2);
        let mut members = vec![&bob_key];
        members.extend(also);
        relay.share(&key(1), &members, &[GOOD]).await?;
        let alice = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "alice").await?;
        let bob = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "bob").await?;
        let mut doc = Automerge::new().with_actor(actor_of(&key(1), 1));
        doc.transact(|tx| tx.put_object(ROOT, "log", ObjType::List))
            .unwrap();
        alice.open(GOOD, doc);
        bob.open(GOOD, Automerge::new().with_actor(actor_of(&key(2), 1)));
        bob.wait_until(|s| s.doc(GOOD).get(ROOT, "log").ok().flatten().is_some())
            .await?;
        Ok(Self {
            alice,
            bob,
            rounds: 0,
            slowest: Duration::ZERO,
        })
    }

    /// One edit by one peer, seen by the other within [`BOUND`].
    pub async fn round(&mut self) -> Result<()> {
        self.rounds += 1;
        let n = self.rounds as i64;
        let (writer, reader) = if n % 2 == 0 {
            (&self.alice, &self.bob)
        } else {
            (&self.bob, &self.alice)
        };
        let started = tokio::time::Instant::now();
        writer.change(GOOD, |tx| {
            let (_, log) = tx.get(ROOT, "log")?.expect("the log exists");
            let end = tx.length(&log);
            tx.insert(&log, end, n)?;
            tx.put(ROOT, "n", n)
        })?;
        let seen = reader.wait_until(|s| {
            s.doc(GOOD)
                .get(ROOT, "n")
                .ok()
                .flatten()
                .and_then(|(v, _)| v.as_i64())
                == Some(n)
        });
        tokio::time::timeout(BOUND, seen)
            .await
            .with_context(|| format!("round trip {n} took longer than {BOUND:?}"))??;
        self.slowest = self.slowest.max(started.elapsed());
        Ok(())
    }

    /// Both have the same heads, every round in the log, and nobody else's
    /// changes.
    pub async fn check(&self) -> Result<()> {
        let heads = self.alice.with(|s| s.doc(GOOD).get_heads());
        self.bob
            .wait_until(|s| s.doc(GOOD).get_heads() == heads)
            .await?;
        let (log, actors) = self.bob.with(|s| {
            let doc = s.doc(GOOD);
            let (_, list) = doc.get(ROOT, "log").unwrap().expect("the log exists");
            let log: Vec<i64> = (0..doc.length(&list))
                .filter_map(|i| doc.get(&list, i).ok().flatten()?.0.as_i64())
                .collect();
            let actors: BTreeSet<ActorId> = doc
                .get_changes(&[])
                .iter()
                .map(|c| c.actor_id().clone())
                .collect();
            (log, actors)
        });
        let mut sorted = log.clone();
        sorted.sort_unstable();
        let expected: Vec<i64> = (1..=self.rounds as i64).collect();
        ensure!(sorted == expected, "the log lost or gained edits: {log:?}");
        let ours: BTreeSet<ActorId> = [actor_of(&key(1), 1), actor_of(&key(2), 1)].into();
        ensure!(
            actors == ours,
            "changes by someone else reached the good document: {actors:?}"
        );
        for peer in [&self.alice, &self.bob] {
            if let Some(why) = peer.with(|s| s.closed.clone()) {
                bail!("{}: cut off during the storm: {why}", peer.peer_id);
            }
        }
        Ok(())
    }
}
