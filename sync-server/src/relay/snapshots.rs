//! Snapshots: a document saved whole, kept for peers that have none of it
//! and stored in place of its changes, whether saved while answering such
//! a peer, in the background once nobody has it open, or by compaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rapport_protocol::ids::DocumentId;
use rapport_protocol::relay::{NewSnapshot, RelayDoc};
use tracing::{debug, warn};

use super::{DocSlot, Relay, Slot, lock};
use crate::metrics::Metrics;
use crate::storage::Store;

impl Relay {
    /// Stores the whole document the slot's document saved last, if any
    /// (see [`RelayDoc::take_new_snapshot`]).
    pub(super) fn keep_new_snapshot(&self, id: DocumentId, slot: &mut DocSlot) {
        if let Some(snapshot) = slot.doc.as_mut().and_then(RelayDoc::take_new_snapshot)
            && self.keep_snapshot(id, snapshot, &slot.compacting)
        {
            slot.since_compaction = 0;
        }
    }

    /// Stores a whole document the relay saved for a peer as the document's
    /// snapshot, through the group commit (lazily) and without waiting,
    /// unless a compaction is running (it makes its own). Returns whether
    /// it was queued.
    fn keep_snapshot(
        &self,
        id: DocumentId,
        snapshot: NewSnapshot,
        running: &Arc<AtomicBool>,
    ) -> bool {
        if running.swap(true, Ordering::AcqRel) {
            return false;
        }
        // Lazy: no fsync of its own; a crash before the next durable commit
        // only loses the snapshot, the changes stay as they were.
        let result = self.writer.submit(
            Store::snapshotting(id, snapshot.saved, snapshot.hashes),
            false,
        );
        let running = Arc::clone(running);
        let kept = Arc::clone(&self.metrics.snapshots_kept);
        tokio::spawn(async move {
            match result.await {
                Ok(Ok(())) => {
                    Metrics::add(&kept, 1);
                    debug!(document = %id, "kept a saved document as its snapshot");
                }
                Ok(Err(e)) => {
                    warn!(document = %id, error = %e, "cannot keep a saved document as its snapshot")
                }
                Err(_) => {
                    warn!(document = %id, "the storage writer stopped before keeping a snapshot")
                }
            }
            running.store(false, Ordering::Release);
        });
        true
    }

    /// Saves documents whole once nobody has them open, one at a time off
    /// their locks: the next peer that has none of a document gets it at
    /// once, and storage keeps it as the snapshot. Runs until `stop`.
    pub(crate) async fn pack_idle_documents(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(mut idle) = lock(&self.idle_rx).take() else {
            return;
        };
        loop {
            let id = tokio::select! {
                id = idle.recv() => match id {
                    Some(id) => id,
                    None => return,
                },
                _ = stop.changed() => return,
            };
            self.pack_idle(id).await;
        }
    }

    async fn pack_idle(&self, id: DocumentId) {
        let Some(slot) = lock(&self.docs).get(&id).cloned() else {
            return;
        };
        let job = {
            let slot = slot.lock().await;
            match slot.doc.as_ref() {
                // Opened again meanwhile: it is queued again when closed.
                Some(doc) if doc.peer_count() == 0 => doc.pack_job(),
                _ => None,
            }
        };
        let Some(job) = job else {
            return;
        };
        let saved = self.low_priority.run(move || {
            let saved = job.run();
            (job, saved)
        });
        let Some((job, Some(saved))) = saved.await else {
            return;
        };
        let mut slot = slot.lock().await;
        if let Some(doc) = slot.doc.as_mut() {
            doc.finish_pack(job, saved);
        }
        self.keep_new_snapshot(id, &mut slot);
    }

    /// Folds the document's stored changes into its snapshot, off the
    /// document's lock and on the low-priority thread: the relay keeps
    /// serving it meanwhile. The document in memory then takes the new
    /// snapshot and lets the folded changes' bytes go.
    pub(super) fn compact_in_background(
        &self,
        id: DocumentId,
        slot: &Arc<Slot>,
        running: &Arc<AtomicBool>,
    ) {
        if running.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.store.clone();
        let threshold = self.config.compact_after_changes;
        let running = Arc::clone(running);
        let span = tracing::info_span!("compaction", document = %id);
        let slot = Arc::clone(slot);
        // Its own write transaction, not the group commit's: measured with
        // `rapport bench ingest`, folding inside the group commit slowed
        // every commit behind it (16,500 changes a second against 19,500).
        let compacted = self.low_priority.run(move || {
            let _entered = span.enter();
            match store.compact_keeping(id, threshold) {
                Ok(compacted) => compacted,
                Err(e) => {
                    warn!(error = %e, "compaction failed; the changes stay as they are");
                    None
                }
            }
        });
        let mut background = lock(&self.background);
        while background.try_join_next().is_some() {}
        background.spawn(async move {
            if let Some((saved, folded)) = compacted.await.flatten() {
                debug!(document = %id, folded = folded.len(), "changes folded into the snapshot");
                if let Some(doc) = slot.lock().await.doc.as_mut() {
                    doc.adopt_snapshot(saved, &folded);
                }
            }
            running.store(false, Ordering::Release);
        });
    }
}
