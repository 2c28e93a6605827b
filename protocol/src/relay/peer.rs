//! What the relay knows about one peer's copy of one document: the fields
//! of `automerge::sync::State`, kept by the relay itself because it syncs
//! from its change graph rather than from a materialized document.

use std::collections::BTreeSet;

use automerge::ChangeHash;
use automerge::sync::Have;

use super::graph::HashSet;
use crate::ids::PeerId;

#[derive(Debug)]
pub(super) struct PeerSync {
    /// The peer id to address messages to.
    pub(super) remote: PeerId,
    /// Heads both sides are known to have.
    pub(super) shared_heads: Vec<ChangeHash>,
    /// Our heads when we last sent a message.
    pub(super) last_sent_heads: Vec<ChangeHash>,
    pub(super) their_heads: Option<Vec<ChangeHash>>,
    /// `their_heads` when we last sent a message.
    pub(super) last_answered_heads: Option<Vec<ChangeHash>>,
    /// The `need` of our last message.
    pub(super) last_sent_need: Vec<ChangeHash>,
    pub(super) their_need: Option<Vec<ChangeHash>>,
    pub(super) their_have: Option<Vec<Have>>,
    /// Changes sent in this session and not yet known to be received.
    pub(super) sent_hashes: HashSet<ChangeHash>,
    /// Heads whose every ancestor the peer holds or was sent in this
    /// session: the relay's heads at its last answer that looked at
    /// everything the peer lacked. The next answer looks only beyond them.
    /// Cleared whenever `sent_hashes` is, or the peer starts over.
    pub(super) covered: Vec<ChangeHash>,
    /// A message is on its way and no answer came yet.
    pub(super) in_flight: bool,
    pub(super) have_responded: bool,
    /// The peer reads v2 sync messages (changes concatenated in one entry).
    pub(super) supports_v2: bool,
    /// The peer does not apply incoming changes.
    pub(super) read_only: bool,
    /// Changes refused from this peer: never asked of it again. Refusals
    /// are the sender's (its access, its key): the same change may come
    /// from its author, who may write it (a change the relay forwarded
    /// before a commit that failed, given back by another peer first).
    pub(super) refused: BTreeSet<ChangeHash>,
    /// Changes went to the peer before they were stored, under older heads:
    /// it must hear the relay's heads once more even if it already holds
    /// them, so that it knows the relay stored what it has. Also set for a
    /// peer that lags when an answer to it was held back: it must hear the
    /// relay's heads (and what it lacks) once the timer fires.
    pub(super) heads_owed: bool,
}

/// Most changes a peer may have been sent without confirming them before
/// it counts as lagging ([`PeerSync::lags`]).
const MAX_UNCONFIRMED: usize = 64;

impl PeerSync {
    pub(super) fn new(remote: PeerId) -> Self {
        Self {
            remote,
            shared_heads: Vec::new(),
            last_sent_heads: Vec::new(),
            their_heads: None,
            last_answered_heads: None,
            last_sent_need: Vec::new(),
            their_need: None,
            their_have: None,
            sent_hashes: HashSet::default(),
            covered: Vec::new(),
            in_flight: false,
            have_responded: false,
            supports_v2: false,
            read_only: false,
            refused: BTreeSet::new(),
            heads_owed: false,
        }
    }

    /// Forgets what was sent to the peer in this session, and so what it
    /// was covered up to: it starts over.
    pub(super) fn forget_sent(&mut self) {
        self.sent_hashes.clear();
        self.covered.clear();
    }

    /// Whether the peer lags: it has not confirmed more than
    /// [`MAX_UNCONFIRMED`] changes sent to it. Every message to it carries
    /// a Bloom filter of what it was sent and has not confirmed, which
    /// grows with its lag: such a peer gets no changes early, and while a
    /// message to it is on its way it hears from the relay again only when
    /// it answers, or when the owed-heads timer fires.
    pub(super) fn lags(&self) -> bool {
        self.sent_hashes.len() > MAX_UNCONFIRMED
    }
}

/// automerge's `advance_heads`: after we applied changes, the heads both
/// sides have are our new heads plus the old shared heads still current.
pub(super) fn advance_heads(
    old_heads: &[ChangeHash],
    new_heads: &[ChangeHash],
    old_shared: &[ChangeHash],
) -> Vec<ChangeHash> {
    let mut advanced: BTreeSet<ChangeHash> = new_heads
        .iter()
        .filter(|h| !old_heads.contains(h))
        .copied()
        .collect();
    advanced.extend(old_shared.iter().filter(|h| new_heads.contains(h)).copied());
    advanced.into_iter().collect()
}
