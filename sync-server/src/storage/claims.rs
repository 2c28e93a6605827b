//! Claims: in token mode, a document no workspace lists belongs to the key
//! that first wrote it (the `claims` table, document id → key). Only that
//! key reads or writes it until a workspace lists it; the claim is written
//! in the same transaction as the document's first changes.

use std::collections::{BTreeSet, HashMap};

use rapport_protocol::ids::{DocumentId, PublicKey};
use redb::{ReadableTable, WriteTransaction};

use super::schema::CLAIMS;
use super::{Store, StoreError};

impl Store {
    /// Every claim.
    pub fn claims(&self) -> Result<HashMap<DocumentId, PublicKey>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(CLAIMS).map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (id, key) = row.map_err(|e| self.err(e))?;
            out.insert(
                DocumentId::from_bytes(*id.value()),
                PublicKey::from_bytes(*key.value()),
            );
        }
        Ok(out)
    }

    /// Records that `key` claimed `id`, inside `tx`.
    pub(super) fn claim(
        &self,
        tx: &WriteTransaction,
        id: DocumentId,
        key: PublicKey,
    ) -> Result<(), StoreError> {
        let mut table = tx.open_table(CLAIMS).map_err(|e| self.err(e))?;
        table
            .insert(id.as_bytes(), key.as_bytes())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records claims in one transaction: for documents stored before the
    /// relay kept claims.
    pub fn save_claims(&self, claims: &[(DocumentId, PublicKey)]) -> Result<(), StoreError> {
        if claims.is_empty() {
            return Ok(());
        }
        let tx = self.begin_write()?;
        for (id, key) in claims {
            self.claim(&tx, *id, *key)?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The actor ids of every change a document holds, in its snapshot and
    /// since: who wrote it.
    pub fn authors(&self, id: DocumentId) -> Result<BTreeSet<Vec<u8>>, StoreError> {
        let stored = self.load_document(id)?;
        let mut actors: BTreeSet<Vec<u8>> =
            stored.changes.iter().map(|c| c.actor.clone()).collect();
        if stored.snapshot.is_some() {
            let doc = self.load_automerge(id)?;
            actors.extend(
                doc.get_changes(&[])
                    .iter()
                    .map(|change| change.actor_id().to_bytes().to_vec()),
            );
        }
        Ok(actors)
    }

    /// The actor of a document's first change: the first in causal order
    /// of its snapshot if it has one, else of its stored changes (stored in
    /// a dependency order). `None` for a document the relay holds nothing of.
    pub fn first_author(&self, id: DocumentId) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.load_document(id)?;
        if stored.snapshot.is_some() {
            let doc = self.load_automerge(id)?;
            return Ok(doc
                .get_changes(&[])
                .first()
                .map(|change| change.actor_id().to_bytes().to_vec()));
        }
        Ok(stored.changes.first().map(|change| change.actor.clone()))
    }
}
