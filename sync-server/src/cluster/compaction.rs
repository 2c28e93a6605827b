//! Compaction of a document's subject (docs/cluster.md, section 3): once a
//! document has had enough messages, the relay that notices saves it whole,
//! publishes that as one message guarded by the subject's last sequence,
//! and purges the subject below it. No change is lost: every change is on
//! the subject after the snapshot or inside it, and the snapshot is
//! published only while every relay's consumer has taken the subject's
//! messages it covers.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt as _;
use rapport_protocol::ids::DocumentId;
use tracing::{debug, info};

use super::{Cluster, ClusterError, NODE, WHOLE, subject};

/// Messages per document counted since its subject was last compacted.
#[derive(Debug, Default)]
pub(crate) struct Counts(Mutex<HashMap<DocumentId, u64>>);

impl Counts {
    /// Counts one message on `document`'s subject; whether this relay is
    /// to compact it now: the count reached `every` since the last
    /// compaction and the message is `ours` (one this relay published),
    /// so that one relay, the one that wrote the message past the mark,
    /// saves the document rather than every relay at once. It is counted
    /// from zero again then.
    pub(crate) fn due(&self, document: DocumentId, every: u64, ours: bool) -> bool {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(document).or_insert(0);
        *count += 1;
        if *count >= every.max(1) && ours {
            counts.remove(&document);
            return true;
        }
        false
    }

    /// Counts `document` from zero: another relay compacted its subject.
    pub(crate) fn reset(&self, document: DocumentId) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(&document);
    }
}

/// What one attempt did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Compacted {
    /// The subject now starts with the snapshot.
    Done { purged_below: u64 },
    /// A relay has not taken every message yet, or a change came in
    /// meanwhile: the next attempt will do.
    NotYet,
    /// The saved document is larger than a message may be.
    TooLarge,
}

impl Cluster {
    /// The last sequence on `document`'s subject, 0 for none.
    pub(crate) async fn last_sequence(&self, document: DocumentId) -> Result<u64, ClusterError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&subject(document))
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(0)
            }
            Err(e) => Err(ClusterError::JetStream(e.to_string())),
        }
    }

    /// The stream sequence every relay's consumer has taken, up to and
    /// including.
    async fn horizon(&self) -> Result<u64, ClusterError> {
        let mut consumers = self.stream.consumers();
        let mut horizon = u64::MAX;
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| ClusterError::JetStream(e.to_string()))?;
            horizon = horizon.min(info.ack_floor.stream_sequence);
        }
        Ok(if horizon == u64::MAX { 0 } else { horizon })
    }

    /// Replaces the messages of `document`'s subject up to `last` (its
    /// last sequence, read by the caller) with `saved`, the document
    /// holding exactly their changes. The caller holds the document's
    /// slot, so no change of it is published or taken meanwhile.
    pub(crate) async fn compact(
        &self,
        document: DocumentId,
        last: u64,
        saved: &[u8],
        heads: &[automerge::ChangeHash],
    ) -> Result<Compacted, ClusterError> {
        if last == 0 || self.horizon().await? < last {
            return Ok(Compacted::NotYet);
        }
        if saved.len() >= self.max_body() {
            return Ok(Compacted::TooLarge);
        }
        let mut body = Vec::with_capacity(saved.len() + 1);
        body.push(WHOLE);
        body.extend_from_slice(saved);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE, self.node.as_str());
        headers.insert(
            super::SNAPSHOT,
            super::message::heads_header(heads).as_str(),
        );
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            last.to_string().as_str(),
        );
        headers.insert("Nats-Msg-Id", format!("s-{document}-{last}").as_str());
        let ack = self
            .js
            .publish_with_headers(subject(document), headers, body.into())
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        let stored = match tokio::time::timeout(super::ACK_TIMEOUT, ack).await {
            Ok(Ok(ack)) => ack.sequence,
            // Another message came after `last`: nothing is published.
            Ok(Err(e)) => {
                debug!(document = %document, error = %e, "the subject moved on; compaction waits");
                return Ok(Compacted::NotYet);
            }
            Err(_) => return Err(ClusterError::Timeout(super::ACK_TIMEOUT)),
        };
        self.stream
            .purge()
            .filter(subject(document))
            .sequence(stored)
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        info!(document = %document, covers = last, at = stored, bytes = saved.len(), "compacted the document's subject");
        Ok(Compacted::Done {
            purged_below: stored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_message_of_ours_past_the_mark_makes_a_compaction_due() {
        let counts = Counts::default();
        let document = DocumentId::from_bytes([1; 16]);
        assert!(!counts.due(document, 3, true));
        assert!(!counts.due(document, 3, false));
        // The third message is another relay's: that relay compacts.
        assert!(!counts.due(document, 3, false));
        // Past the mark, the next of ours does.
        assert!(counts.due(document, 3, true));
        // Counted from zero again.
        assert!(!counts.due(document, 3, true));
        assert!(!counts.due(document, 3, true));
        // Another relay compacted: from zero too.
        counts.reset(document);
        assert!(!counts.due(document, 3, true));
    }
}
