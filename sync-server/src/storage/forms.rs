//! Storage for intake forms: form definitions, a submission written as one
//! transaction, and the relay's own identity.

use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::StoredChange;
use redb::ReadableTable;

use super::schema::{FORMS, META};
use super::{Store, StoreError, WorkspaceRows};

/// The relay's own key pair and automerge actor, made once and kept in
/// `meta`. The actor is self-describing (the public key, then random
/// device bytes), as a rapport client's is.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayKeys {
    pub secret: [u8; 32],
    pub actor: Vec<u8>,
}

impl RelayKeys {
    /// The key of `secret`, with a new actor of its own: the key, then 16
    /// random bytes, so that the actor names its key.
    pub fn with_new_actor(secret: [u8; 32]) -> Self {
        let mut actor = Self {
            secret,
            actor: Vec::new(),
        }
        .public_key()
        .as_bytes()
        .to_vec();
        actor.extend_from_slice(&rand::random::<[u8; 16]>());
        Self { secret, actor }
    }

    /// The public key of the pair.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(ed25519_dalek::SigningKey::from_bytes(&self.secret).verifying_key())
    }

    /// The relay's automerge actor.
    pub fn actor_id(&self) -> automerge::ActorId {
        automerge::ActorId::from(self.actor.clone())
    }
}

impl std::fmt::Debug for RelayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayKeys")
            .field("public_key", &self.public_key().to_string())
            .field("actor", &self.actor.len())
            .finish_non_exhaustive()
    }
}

/// A form submission as one durable write: the new document's changes and
/// the actor bindings they need, the workspace that now lists the document
/// with its audit events, and the form with its new count.
#[derive(Debug)]
pub struct SubmissionWrite<'a> {
    pub document: DocumentId,
    pub changes: &'a [StoredChange],
    pub bindings: &'a [(Vec<u8>, PublicKey)],
    /// The workspace's rows: the new document's listing.
    pub workspace: &'a WorkspaceRows,
    pub events: &'a [Vec<u8>],
    /// Form id and its JSON.
    pub form: (&'a str, &'a [u8]),
    /// Whether the workspace has automations to tell of the new task.
    pub for_automations: bool,
}

const SECRET_KEY: &str = "relay_secret_key";
const ACTOR: &str = "relay_actor";

impl Store {
    /// Every form, as stored (JSON).
    pub fn forms(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(FORMS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            out.push(row.map_err(|e| self.err(e))?.1.value().to_vec());
        }
        Ok(out)
    }

    /// Writes a form and appends audit events to its workspace, in one
    /// durable transaction.
    pub fn save_form(
        &self,
        id: &str,
        form: &[u8],
        workspace: &str,
        events: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        {
            let mut table = tx.open_table(FORMS).map_err(|e| self.err(e))?;
            table.insert(id, form).map_err(|e| self.err(e))?;
        }
        self.append_audit(&tx, workspace, events)?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Stores a submission: all of it or, after a crash or an error, none.
    pub fn save_submission(&self, write: &SubmissionWrite<'_>) -> Result<(), StoreError> {
        let tx = self.begin_write()?;
        self.append_changes(&tx, write.document, write.changes, write.bindings)?;
        self.put_workspace(&tx, write.workspace)?;
        {
            let mut forms = tx.open_table(FORMS).map_err(|e| self.err(e))?;
            forms
                .insert(write.form.0, write.form.1)
                .map_err(|e| self.err(e))?;
        }
        self.append_audit(&tx, &write.workspace.id, write.events)?;
        if write.for_automations {
            self.mark_pending(&tx, write.document, &[])?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        self.note_changed([write.document]);
        Ok(())
    }

    /// The relay's own identity, made with `make` and stored the first
    /// time, with its actor bound to its key in `actors` in the same
    /// transaction.
    pub fn relay_keys(&self, make: impl FnOnce() -> RelayKeys) -> Result<RelayKeys, StoreError> {
        let tx = self.begin_write()?;
        let keys = {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            let secret = meta
                .get(SECRET_KEY)
                .map_err(|e| self.err(e))?
                .map(|v| <[u8; 32]>::try_from(v.value()));
            let actor = meta
                .get(ACTOR)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec());
            match (secret, actor) {
                (Some(Ok(secret)), Some(actor)) => return Ok(RelayKeys { secret, actor }),
                (Some(Err(_)), _) | (Some(_), None) | (None, Some(_)) => {
                    return Err(self.corrupt("meta"));
                }
                (None, None) => {
                    let keys = make();
                    meta.insert(SECRET_KEY, keys.secret.as_slice())
                        .map_err(|e| self.err(e))?;
                    meta.insert(ACTOR, keys.actor.as_slice())
                        .map_err(|e| self.err(e))?;
                    keys
                }
            }
        };
        self.append_changes(
            &tx,
            // No changes: only the binding is written.
            DocumentId::from_bytes([0; 16]),
            &[],
            &[(keys.actor.clone(), keys.public_key())],
        )?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rapport-store-forms-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Real changes, so that compaction can load them.
    fn changes(n: usize) -> Vec<StoredChange> {
        let mut doc = Automerge::new();
        for i in 0..n {
            doc.transact(|tx| tx.put(ROOT, "n", i as i64))
                .expect("a change");
        }
        doc.get_changes(&[])
            .iter()
            .map(StoredChange::from)
            .collect()
    }

    #[test]
    fn the_relay_keys_are_made_once_and_their_actor_is_bound() {
        let dir = temp_dir("keys");
        let made = RelayKeys {
            secret: [7; 32],
            actor: vec![1, 2, 3],
        };
        {
            let store = Store::open(&dir).unwrap();
            assert_eq!(store.relay_keys(|| made.clone()).unwrap(), made);
        }
        let store = Store::open(&dir).unwrap();
        let again = store
            .relay_keys(|| panic!("the keys exist already"))
            .unwrap();
        assert_eq!(again, made);
        assert_eq!(
            store.actor_key(&made.actor).unwrap(),
            Some(made.public_key())
        );
        assert!(
            !format!("{again:?}").contains("[7, 7"),
            "no secret in Debug"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_submission_is_one_write() {
        let dir = temp_dir("submission");
        let store = Store::open(&dir).unwrap();
        let doc = DocumentId::from_bytes([5; 16]);
        let key = PublicKey::from_bytes([9; 32]);
        let all = changes(1);
        store
            .save_submission(&SubmissionWrite {
                document: doc,
                changes: &all,
                bindings: &[(all[0].actor.clone(), key)],
                workspace: &WorkspaceRows {
                    id: "ws-1".into(),
                    json: None,
                    documents: vec![(doc, Some(b"{\"d\":1}".to_vec()))],
                },
                events: &[b"{\"e\":1}".to_vec()],
                form: ("form-1", b"{\"f\":1}"),
                for_automations: true,
            })
            .unwrap();
        assert_eq!(
            store.pending().unwrap()[0].document,
            doc,
            "marked, as asked"
        );
        assert_eq!(store.load_document(doc).unwrap().changes.len(), 1);
        assert_eq!(
            store.workspace_documents().unwrap(),
            [("ws-1".to_owned(), doc, b"{\"d\":1}".to_vec())]
        );
        assert_eq!(store.changed_since(0), Some((vec![doc], 1)), "noted");
        assert_eq!(store.forms().unwrap(), [b"{\"f\":1}".to_vec()]);
        assert_eq!(store.audit("ws-1").unwrap(), [b"{\"e\":1}".to_vec()]);
        assert_eq!(store.actor_key(&all[0].actor).unwrap(), Some(key));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
