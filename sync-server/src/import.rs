//! `rapport-server import`: an export (`rapport-server export`, or a
//! member's `rapport export`) put into a stopped relay as a workspace of
//! its own, for moving a workspace between relays. The documents keep their
//! ids and their whole history (each export's heads are checked), and the
//! workspace keeps its id, so that links to its documents and its
//! automations document still match. Members do not travel: the operator
//! names the owner, who invites the others again. Comment threads are
//! listed as threads of their records; every actor is bound to the key it
//! names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use automerge::Automerge;
use rapport_model::Thread;
use rapport_model::export::{MANIFEST, Manifest};
use rapport_model::workspace::{AuditEvent, DocInfo, Workspace};
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::StoredChange;

use crate::relay::now;
use crate::storage::{AutomationWrite, Store, StoreError};
use crate::workspace::Workspaces;

/// Why an import did not happen. Nothing is written unless all of it can be.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} is not a rapport export: {reason}", path.display())]
    NotAnExport { path: PathBuf, reason: String },
    #[error("the export names no workspace; give one with --workspace-id")]
    NoWorkspace,
    #[error("a relay is running on {}; stop it before importing", path.display())]
    Running { path: PathBuf },
    #[error("this relay already has workspace {0}")]
    WorkspaceExists(String),
    #[error("this relay already holds document {0}; an import brings only new documents")]
    DocumentExists(DocumentId),
    #[error("{0}")]
    Workspace(String),
}

/// What an import brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub workspace: String,
    pub documents: usize,
    pub changes: usize,
}

/// Imports the export in `from` into the stopped relay whose data folder is
/// `data_dir`, as workspace `workspace` (the export's own when `None`)
/// owned by `owner` and called `name`. Blocking.
pub fn import(
    data_dir: &Path,
    from: &Path,
    owner: PublicKey,
    name: &str,
    workspace: Option<&str>,
) -> Result<Imported, ImportError> {
    let manifest_path = from.join(MANIFEST);
    let manifest: Manifest =
        serde_json::from_slice(&read(&manifest_path)?).map_err(|e| ImportError::NotAnExport {
            path: from.to_owned(),
            reason: format!("{MANIFEST}: {e}"),
        })?;
    if manifest.format != "rapport-export" {
        return Err(ImportError::NotAnExport {
            path: from.to_owned(),
            reason: format!("{MANIFEST} says format `{}`", manifest.format),
        });
    }
    let id = workspace
        .map(str::to_owned)
        .or(manifest.workspace.clone())
        .ok_or(ImportError::NoWorkspace)?;
    // Every document read and checked before anything is written.
    let mut documents = BTreeMap::new();
    for entry in &manifest.documents {
        let doc_id: DocumentId = entry.id.parse().map_err(|_| ImportError::NotAnExport {
            path: from.to_owned(),
            reason: format!(
                "{MANIFEST} names `{}`, which is not a document id",
                entry.id
            ),
        })?;
        let path = from.join(format!("{}.automerge", entry.id));
        let doc = Automerge::load(&read(&path)?).map_err(|e| ImportError::NotAnExport {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let heads: Vec<String> = doc.get_heads().iter().map(ToString::to_string).collect();
        let mut expected = entry.heads.clone();
        expected.sort();
        let mut found = heads.clone();
        found.sort();
        if expected != found {
            return Err(ImportError::NotAnExport {
                path,
                reason: "its history does not end where the manifest says".into(),
            });
        }
        documents.insert(doc_id, doc);
    }

    let store = Store::open(data_dir).map_err(|e| match e {
        StoreError::Open { .. } => ImportError::Running {
            path: data_dir.to_owned(),
        },
        other => ImportError::Store(other),
    })?;
    let mut workspaces = Workspaces::load(&store, None)?;
    if workspaces.get(&id).is_ok() {
        return Err(ImportError::WorkspaceExists(id));
    }
    if let Some(doc) = documents.keys().find(|doc| {
        store.may_hold(**doc) || workspaces.home_of(**doc).is_some() || workspaces.is_removed(**doc)
    }) {
        return Err(ImportError::DocumentExists(*doc));
    }

    let feed_end_before = store.feed_end();
    let at = now().0;
    let mut listed = Workspace::new(id.clone(), name.to_owned(), owner, None, at);
    let mut written = Vec::with_capacity(documents.len());
    let mut bindings: Vec<(Vec<u8>, PublicKey)> = Vec::new();
    for (doc_id, doc) in &documents {
        let stored: Vec<StoredChange> = doc
            .get_changes(&[])
            .iter()
            .map(StoredChange::from)
            .collect();
        bindings.extend(
            stored
                .iter()
                .filter_map(|c| PublicKey::of_actor(&c.actor).map(|key| (c.actor.clone(), key))),
        );
        let thread_of = Thread::read(doc)
            .ok()
            .and_then(|thread| thread.record.parse().ok())
            .filter(|record| documents.contains_key(record));
        listed.documents.insert(
            *doc_id,
            DocInfo {
                thread_of,
                added_by: owner,
                added_at: at,
            },
        );
        written.push((*doc_id, stored));
    }
    bindings.sort();
    bindings.dedup();
    let changes = written.iter().map(|(_, c)| c.len()).sum();
    let mut imported = AuditEvent::new("workspace-imported", owner, at);
    imported.detail = format!("{} document(s) from an export", documents.len());
    // The documents, their bindings and the workspace: one transaction.
    workspaces
        .commit_with(listed, vec![imported], |rows, events| {
            store.save_automation(&AutomationWrite {
                changes: written,
                bindings: &bindings,
                workspace: Some(rows),
                events,
                ..AutomationWrite::default()
            })
        })
        .map_err(|e| ImportError::Workspace(e.to_string()))?;
    // Mentions and assignments in the history were told on the old relay;
    // a notifier that had read the whole feed goes on after the import.
    if store.notify_cursor()? >= feed_end_before {
        store.save_notifications(Vec::new(), Some(store.feed_end()))?;
    }
    Ok(Imported {
        workspace: id,
        documents: documents.len(),
        changes,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|e| ImportError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}
