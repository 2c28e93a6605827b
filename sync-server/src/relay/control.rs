//! What other relays of the cluster decided about workspaces, taken into
//! this relay's copy: a workspace's members and shares, a document listed
//! or no longer, a document deleted or erased. Sessions follow at once, as
//! when the change is made here: a member removed through another relay
//! is disconnected from this one.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{debug, warn};

use super::{Relay, lock};
use crate::cluster::control::{Control, Entry, Key, Value, tombstone_of};
use crate::workspace::{AuditEvent, DocInfo, Workspace, WorkspaceError};

impl Relay {
    /// Takes one key of the shared workspaces into this relay's copy,
    /// unless the copy holds it already (this relay wrote it).
    pub(crate) async fn take_control(self: &Arc<Self>, control: &Control, entry: Entry) {
        let name = entry.key.clone();
        let Some(key) = Key::parse(&name) else {
            warn!(key = %entry.key, "a shared workspace key of no known kind");
            return;
        };
        let taken = match key {
            Key::Tombstone(document) => {
                let news = {
                    let _held = lock(&self.workspaces);
                    control.is_news(&entry)
                };
                match entry.value {
                    Some(value) if news => self.take_tombstone(document, value).await,
                    _ => Ok(()),
                }
            }
            Key::Workspace(_) | Key::Listing(_) => self.take_row(control, key, entry),
            // Forms are the server's (`Forms::take_remote`).
            Key::Form(_) => Ok(()),
            Key::Refusal(workspace) => self.take_refusals(control, &workspace, entry),
        };
        match taken {
            Ok(()) => debug!(key = %name, "took a shared workspace change"),
            Err(e) => warn!(key = %name, error = %e, "cannot take a shared workspace change"),
        }
    }

    /// Reads workspace `id`'s own row from the shared bucket now and takes
    /// it, for a caller that misses what another relay wrote a moment ago;
    /// whether there was anything new.
    pub(crate) async fn refresh_workspace(self: &Arc<Self>, id: &str) -> bool {
        let Some(control) = self.control.get() else {
            return false;
        };
        match control.read_workspace(id).await {
            Some(entry) => {
                let revision = entry.revision;
                self.take_control(control, entry).await;
                debug!(
                    workspace = id,
                    revision, "read the workspace from the shared bucket"
                );
                true
            }
            None => false,
        }
    }

    /// A workspace's own row, or a document's listing.
    fn take_row(
        self: &Arc<Self>,
        control: &Control,
        key: Key,
        entry: Entry,
    ) -> Result<(), WorkspaceError> {
        let workspace = entry.value.as_ref().map(|v| v.workspace.clone());
        let (narrowed, widened) = {
            let mut workspaces = lock(&self.workspaces);
            if !control.is_news(&entry) {
                return Ok(());
            }
            match (key, entry.value) {
                (Key::Workspace(_), Some(value)) => {
                    let events = events_of(&value);
                    let workspace: Workspace = parse(value.row)?;
                    let changed = workspaces.take_remote(&self.store, workspace, events)?;
                    (changed.clone(), changed)
                }
                (Key::Listing(document), Some(value)) => {
                    let events = events_of(&value);
                    let info: DocInfo = parse(value.row)?;
                    let members = workspaces.take_remote_listing(
                        &self.store,
                        &value.workspace,
                        document,
                        Some(info),
                        events,
                    )?;
                    (Vec::new(), members)
                }
                (Key::Listing(document), None) => {
                    let Some(home) = workspaces.home_of(document).map(str::to_owned) else {
                        return Ok(());
                    };
                    let members = workspaces.take_remote_listing(
                        &self.store,
                        &home,
                        document,
                        None,
                        Vec::new(),
                    )?;
                    (members, Vec::new())
                }
                _ => return Ok(()),
            }
        };
        self.enforce(&narrowed, &widened);
        if let Some(workspace) = workspace {
            self.look_at_rules(&workspace)?;
        }
        Ok(())
    }

    /// Has the automations look at `workspace`'s rules document, when it
    /// is listed and held here: its changes may have come before its
    /// listing, when nothing looked at them.
    fn look_at_rules(&self, workspace: &str) -> Result<(), WorkspaceError> {
        let Some(rules) = lock(&self.workspaces).rules_of(workspace) else {
            return Ok(());
        };
        if self.store.may_hold(rules) && !self.automations.is_active(workspace) {
            self.store.mark_pending_whole(rules)?;
            self.automations.unsettle(workspace);
            self.automations.wake();
        }
        Ok(())
    }

    /// Audit events another relay recorded for a refusal.
    fn take_refusals(
        &self,
        control: &Control,
        workspace: &str,
        entry: Entry,
    ) -> Result<(), WorkspaceError> {
        let mut workspaces = lock(&self.workspaces);
        if control.is_ours(&entry) || !control.is_news(&entry) {
            return Ok(());
        }
        let Some(value) = entry.value.as_ref() else {
            return Ok(());
        };
        let events = events_of(value);
        workspaces.unreplicated(|w| w.record(&self.store, workspace, &events))?;
        Ok(())
    }

    /// A document deleted or erased through another relay.
    async fn take_tombstone(
        &self,
        document: rapport_protocol::ids::DocumentId,
        value: Value,
    ) -> Result<(), WorkspaceError> {
        let tombstone = tombstone_of(&value)
            .ok_or_else(|| WorkspaceError::Invalid("a tombstone that does not parse".into()))?;
        if lock(&self.workspaces).is_removed(document) {
            return Ok(());
        }
        let events = events_of(&value);
        let tombstones = BTreeMap::from([(document, tombstone)]);
        self.take_removal(&value.workspace, tombstones, events, false)
            .await
            .map(|_| ())
    }
}

fn parse<T: serde::de::DeserializeOwned>(row: serde_json::Value) -> Result<T, WorkspaceError> {
    serde_json::from_value(row).map_err(|e| WorkspaceError::Invalid(e.to_string()))
}

/// The audit events a value carries; one that does not parse is passed
/// over.
fn events_of(value: &Value) -> Vec<AuditEvent> {
    value
        .audit
        .iter()
        .filter_map(|event| serde_json::from_value(event.clone()).ok())
        .collect()
}
