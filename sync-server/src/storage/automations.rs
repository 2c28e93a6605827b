//! Storage for automations: which documents have changes the rules have not
//! looked at, and the webhooks waiting to be delivered.
//!
//! Exactly once: a document is marked pending in the same transaction that
//! stores its changes, and the automations' results (their changes, the
//! workspace listing new documents, webhooks to send) are stored in the
//! same transaction that clears the mark. A crash leaves either the mark
//! (the rules look again, and find the same events) or the results.

use automerge::ChangeHash;
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::StoredChange;
use redb::{ReadableTable, WriteTransaction};

use super::schema::{AUTOMATION_OUTBOX, AUTOMATION_PENDING, AUTOMATION_SHARED};
use super::{Store, StoreError, WorkspaceRows};

/// A document with changes the automations have not looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub document: DocumentId,
    /// Bumped by every append since the mark was made.
    pub generation: u64,
    /// The document's heads before the first change not looked at.
    pub before: Vec<ChangeHash>,
    /// Whether it was shared with someone since.
    pub shared: bool,
}

/// What running the rules on one pending document writes, in one
/// transaction with clearing its mark.
#[derive(Debug, Default)]
pub struct AutomationWrite<'a> {
    /// The document looked at, the generation looked at, and its heads
    /// after the relay's own changes to it.
    pub looked_at: Option<(DocumentId, u64, Vec<ChangeHash>)>,
    /// Changes by the relay, per document.
    pub changes: Vec<(DocumentId, Vec<StoredChange>)>,
    pub bindings: &'a [(Vec<u8>, PublicKey)],
    /// The workspace's rows, when it lists new documents.
    pub workspace: Option<&'a WorkspaceRows>,
    pub events: &'a [Vec<u8>],
    /// Webhooks to deliver (JSON).
    pub deliveries: Vec<Vec<u8>>,
    /// Outbox rows done with: `(sequence, None)` deletes, `Some` rewrites.
    pub outbox: Vec<(u64, Option<Vec<u8>>)>,
}

impl Store {
    pub(super) fn mark_pending(
        &self,
        tx: &WriteTransaction,
        id: DocumentId,
        before: &[ChangeHash],
    ) -> Result<(), StoreError> {
        let mut table = tx.open_table(AUTOMATION_PENDING).map_err(|e| self.err(e))?;
        let existing = table
            .get(id.as_bytes())
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec());
        let row = match existing {
            Some(row) => {
                let (generation, before) =
                    decode_pending(&row).ok_or_else(|| self.corrupt("automation_pending"))?;
                encode_pending(generation + 1, &before)
            }
            None => encode_pending(0, before),
        };
        table
            .insert(id.as_bytes(), row.as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes a workspace in which `document` was shared, with its audit
    /// events, and marks the document for the automations (at `heads`, its
    /// heads now), in one durable transaction.
    pub fn save_workspace_sharing(
        &self,
        rows: &WorkspaceRows,
        events: &[Vec<u8>],
        document: DocumentId,
        heads: &[ChangeHash],
    ) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        self.put_workspace(&tx, rows)?;
        self.append_audit(&tx, &rows.id, events)?;
        self.mark_pending(&tx, document, heads)?;
        {
            let mut shared = tx.open_table(AUTOMATION_SHARED).map_err(|e| self.err(e))?;
            shared
                .insert(document.as_bytes(), ())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        self.note_listed(rows);
        Ok(())
    }

    /// Marks `document` for the automations to look at as a whole (the
    /// rules document of a workspace whose listing came after its
    /// changes).
    pub fn mark_pending_whole(&self, document: DocumentId) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        self.mark_pending(&tx, document, &[])?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every pending document.
    pub fn pending(&self) -> Result<Vec<Pending>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(AUTOMATION_PENDING).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            let (generation, before) =
                decode_pending(value.value()).ok_or_else(|| self.corrupt("automation_pending"))?;
            out.push(Pending {
                document: DocumentId::from_bytes(*key.value()),
                generation,
                before,
                shared: false,
            });
        }
        let shared = tx.open_table(AUTOMATION_SHARED).map_err(|e| self.err(e))?;
        for pending in &mut out {
            pending.shared = shared
                .get(pending.document.as_bytes())
                .map_err(|e| self.err(e))?
                .is_some();
        }
        Ok(out)
    }

    /// Stores what the automations did, and clears the mark of the document
    /// they looked at, unless changes came since (then the mark moves on to
    /// the heads looked at).
    pub fn save_automation(&self, write: &AutomationWrite<'_>) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        for (id, changes) in &write.changes {
            self.append_changes(&tx, *id, changes, write.bindings)?;
        }
        if let Some(rows) = write.workspace {
            self.put_workspace(&tx, rows)?;
            self.append_audit(&tx, &rows.id, write.events)?;
        }
        {
            let mut outbox = tx.open_table(AUTOMATION_OUTBOX).map_err(|e| self.err(e))?;
            let first = match outbox.last().map_err(|e| self.err(e))? {
                Some((key, _)) => key.value() + 1,
                None => 0,
            };
            for (seq, delivery) in (first..).zip(&write.deliveries) {
                outbox
                    .insert(seq, delivery.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            for (seq, row) in &write.outbox {
                // A delivery dropped meanwhile (its record was erased) is
                // not written back by the attempt that was under way.
                let present = outbox.get(*seq).map_err(|e| self.err(e))?.is_some();
                match row {
                    Some(row) if present => outbox.insert(*seq, row.as_slice()).map(drop),
                    Some(_) => Ok(()),
                    None => outbox.remove(*seq).map(drop),
                }
                .map_err(|e| self.err(e))?;
            }
        }
        if let Some((id, generation, after)) = &write.looked_at {
            tx.open_table(AUTOMATION_SHARED)
                .map_err(|e| self.err(e))?
                .remove(id.as_bytes())
                .map_err(|e| self.err(e))?;
            let mut table = tx.open_table(AUTOMATION_PENDING).map_err(|e| self.err(e))?;
            let current = table
                .get(id.as_bytes())
                .map_err(|e| self.err(e))?
                .and_then(|v| decode_pending(v.value()));
            match current {
                Some((now, _)) if now == *generation => {
                    table.remove(id.as_bytes()).map_err(|e| self.err(e))?;
                }
                Some((now, _)) => {
                    let row = encode_pending(now, after);
                    table
                        .insert(id.as_bytes(), row.as_slice())
                        .map_err(|e| self.err(e))?;
                }
                None => {}
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        self.note_changed(write.changes.iter().map(|(id, _)| *id));
        if let Some(rows) = write.workspace {
            self.note_listed(rows);
        }
        Ok(())
    }

    /// The webhooks waiting, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(AUTOMATION_OUTBOX).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            out.push((key.value(), value.value().to_vec()));
        }
        Ok(out)
    }
}

fn encode_pending(generation: u64, before: &[ChangeHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 32 * before.len());
    out.extend_from_slice(&generation.to_le_bytes());
    for hash in before {
        out.extend_from_slice(&hash.0);
    }
    out
}

fn decode_pending(bytes: &[u8]) -> Option<(u64, Vec<ChangeHash>)> {
    let (generation, heads) = bytes.split_first_chunk::<8>()?;
    if heads.len() % 32 != 0 {
        return None;
    }
    let before = heads
        .chunks_exact(32)
        .map(|h| h.try_into().ok().map(ChangeHash))
        .collect::<Option<Vec<_>>>()?;
    Some((u64::from_le_bytes(*generation), before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_rows_round_trip() {
        let heads = vec![ChangeHash([1; 32]), ChangeHash([2; 32])];
        assert_eq!(decode_pending(&encode_pending(7, &heads)), Some((7, heads)));
        assert_eq!(decode_pending(&encode_pending(0, &[])), Some((0, vec![])));
        assert_eq!(decode_pending(&[1, 2, 3]), None);
        assert_eq!(decode_pending(&[0; 9]), None);
    }
}
