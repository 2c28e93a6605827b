//! The relay's part in compacting a document's subject in the cluster's
//! stream (`cluster::compaction`): it counts the messages of each
//! document it publishes or takes, and once a document has had
//! `compact_after_changes` of them, saves it whole while holding its slot,
//! so that the snapshot holds exactly the changes the subject has so far.

use rapport_protocol::ids::DocumentId;
use tracing::{debug, warn};

use super::Relay;
use crate::cluster::compaction::Compacted;

impl Relay {
    /// Counts one message of `document` in the cluster's stream (`ours`:
    /// this relay published it), and asks for its subject to be compacted
    /// when it is due.
    pub(super) fn count_in_cluster(&self, document: DocumentId, ours: bool) {
        if let Some(cluster) = self.cluster.get()
            && cluster
                .counts
                .due(document, self.config.compact_after_changes as u64, ours)
        {
            cluster.ask_compaction(document);
        }
    }

    /// Compacts `document`'s subject, if every relay has taken it so far;
    /// asks again a little later if not (this was attempt `attempt`).
    pub(crate) async fn compact_in_cluster(&self, document: DocumentId, attempt: u32) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let slot = self.slot(document);
        // Held throughout: no change of the document is published or
        // taken meanwhile.
        let _held = slot.lock().await;
        let last = match cluster.last_sequence(document).await {
            Ok(last) => last,
            Err(e) => {
                warn!(%document, error = %e, "cannot read the document's subject; not compacting it");
                return;
            }
        };
        let store = self.store.clone();
        let saved = tokio::task::spawn_blocking(move || {
            store
                .load_automerge(document)
                .map(|doc| (doc.save(), doc.get_heads()))
        })
        .await;
        let (saved, heads) = match saved {
            Ok(Ok(saved)) => saved,
            Ok(Err(e)) => {
                warn!(%document, error = %e, "cannot load the document to compact its subject");
                return;
            }
            Err(e) => {
                warn!(%document, error = %e, "loading the document to compact its subject failed");
                return;
            }
        };
        match cluster.compact(document, last, &saved, &heads).await {
            Ok(Compacted::Done { purged_below }) => {
                debug!(%document, purged_below, "subject compacted");
            }
            Ok(Compacted::NotYet) => {
                debug!(%document, attempt, "subject not compacted yet");
                cluster.ask_compaction_again(document, attempt);
            }
            Ok(Compacted::TooLarge) => {
                warn!(%document, bytes = saved.len(), "the document is larger than a NATS message; its subject is not compacted");
            }
            Err(e) => warn!(%document, error = %e, "compacting the document's subject failed"),
        }
    }
}
