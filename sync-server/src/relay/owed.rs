//! Heads owed to peers that got changes before the relay stored them
//! ([`RelayDoc::forward_early`](rapport_protocol::relay::RelayDoc::forward_early)):
//! a short while after the commit, each hears once what the relay holds,
//! however many changes it got meanwhile. A peer that keeps getting
//! changes learns the heads with them; a document gone quiet pays its debt
//! within [`OWED_HEADS_AFTER`].

use std::time::Duration;

use rapport_protocol::ids::DocumentId;

use super::{Relay, lock};

/// How long heads may stay owed. Long enough to pay for a few keystrokes
/// of a busy document at once; short enough that a peer's "saved on the
/// relay" follows its screen without a visible lag.
const OWED_HEADS_AFTER: Duration = Duration::from_millis(20);

impl Relay {
    /// Remembers that a peer of `id` is owed the document's heads.
    pub(super) fn note_heads_owed(&self, id: DocumentId) {
        if lock(&self.owed_heads).insert(id) {
            self.owed_heads_noted.notify_one();
        }
    }

    /// Until `stop`: once heads are owed, waits [`OWED_HEADS_AFTER`], then
    /// tells every peer owed them what the relay holds.
    pub(crate) async fn answer_owed_heads(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = self.owed_heads_noted.notified() => {}
                _ = stop.changed() => return,
            }
            tokio::time::sleep(OWED_HEADS_AFTER).await;
            let owed = std::mem::take(&mut *lock(&self.owed_heads));
            for id in owed {
                let Some(slot) = lock(&self.docs).get(&id).cloned() else {
                    continue;
                };
                // A document busy with a commit (an fsync, a round trip to
                // the cluster) is tried again on the next tick rather than
                // waited for: the other documents' peers, and peers that
                // lag (which hear from the relay only with their own
                // messages and these ticks), are not held up behind it.
                let Ok(mut slot) = slot.try_lock() else {
                    self.note_heads_owed(id);
                    continue;
                };
                if let Some(doc) = slot.doc.as_mut() {
                    doc.answer_owed();
                    self.flush(doc);
                }
            }
        }
    }
}
