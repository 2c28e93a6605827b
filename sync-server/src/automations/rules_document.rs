//! Each workspace's automations document belongs to it from the moment the
//! workspace exists: the relay makes it and lists it in the same
//! transaction that stores the workspace, so no one else can make a
//! document under its (derived, predictable) id first. Only admins and
//! owners write it (`rapport_model::workspace::Workspace::access`).
//!
//! Workspaces made before this have their document adopted at start: made
//! and listed if the relay holds none, listed if everything in it was
//! written by the workspace's admins and owners, and otherwise left out, so
//! that its rules never run, with a warning in the log.

use std::sync::Arc;

use automerge::Automerge;
use automerge::transaction::CommitOptions;
use rapport_model::automation::document;
use rapport_model::workspace::{AuditEvent, DocInfo};
use rapport_model::{ModelError, Role};
use rapport_protocol::ids::{DocumentId, UnixMillis};
use rapport_protocol::relay::StoredChange;
use tracing::{info, warn};

use crate::relay::{Relay, lock, now};
use crate::storage::{AutomationWrite, RelayKeys};
use crate::workspace::WorkspaceError;

/// The automations document of a new workspace `workspace`: its id and its
/// one change, by the relay.
pub(crate) fn new_rules_document(
    keys: &RelayKeys,
    workspace: &str,
    at: UnixMillis,
) -> Result<(DocumentId, Vec<StoredChange>), ModelError> {
    let mut doc = Automerge::new().with_actor(keys.actor_id());
    let options = CommitOptions::default()
        .with_message("workspace created".to_owned())
        .with_time(i64::try_from(at.as_secs()).unwrap_or(i64::MAX));
    doc.transact_with(|_| options, |tx| document::write_header(tx, workspace))
        .map_err(|failure| failure.error)?;
    Ok((
        document::document_id(workspace),
        StoredChange::since(&doc, &[]),
    ))
}

/// Lists every workspace's automations document that is not listed yet
/// (see the module docs). Blocking.
pub(crate) fn adopt_rules_documents(relay: &Arc<Relay>) -> Result<(), WorkspaceError> {
    let ids: Vec<String> = lock(&relay.workspaces).ids().map(str::to_owned).collect();
    for id in ids {
        let rules = document::document_id(&id);
        {
            let workspaces = lock(&relay.workspaces);
            if workspaces.home_of(rules).is_some() || workspaces.is_removed(rules) {
                continue;
            }
        }
        let authors = relay.authors(rules)?;
        let keys = relay.relay_keys()?;
        let relay_key = keys.public_key();
        let mut workspaces = lock(&relay.workspaces);
        let mut workspace = workspaces.get(&id)?.clone();
        let trusted = authors.iter().all(|author| {
            author.is_some_and(|author| {
                author == relay_key
                    || workspace
                        .members
                        .get(&author)
                        .is_some_and(|m| m.role >= Role::Admin)
            })
        });
        if !trusted {
            warn!(workspace = %id, document = %rules, "the automations document holds changes by people who are not admins of the workspace; it is not adopted and its rules do not run");
            continue;
        }
        let at = now();
        let changes = if authors.is_empty() {
            new_rules_document(&keys, &id, at)
                .map_err(|e| WorkspaceError::Invalid(e.to_string()))?
                .1
        } else {
            Vec::new()
        };
        workspace.documents.insert(
            rules,
            DocInfo {
                thread_of: None,
                added_by: relay_key,
                added_at: at.0,
            },
        );
        let mut listed = AuditEvent::new("document-added", relay_key, at.0);
        listed.document = Some(rules);
        listed.detail = "the workspace's automations document".into();
        let bindings = [(keys.actor.clone(), relay_key)];
        workspaces.commit_with(workspace, vec![listed], |rows, events| {
            relay.store().save_automation(&AutomationWrite {
                changes: if changes.is_empty() {
                    Vec::new()
                } else {
                    vec![(rules, changes.clone())]
                },
                bindings: &bindings,
                workspace: Some(rows),
                events,
                ..AutomationWrite::default()
            })
        })?;
        drop(workspaces);
        let has_rules = !document::rules(&relay.store().load_automerge(rules)?).is_empty();
        relay.automations.set_active(&id, has_rules);
        info!(workspace = %id, document = %rules, "automations document listed in its workspace");
    }
    Ok(())
}
