//! What the sync path needs to know about automations: which workspaces
//! have rules (so that their documents' changes are marked pending in the
//! same transaction that stores them), and how to wake the engine. The
//! engine (`crate::automations`) reads and updates this through the relay;
//! the relay never calls the engine.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rapport_model::automation::document;
use rapport_protocol::ids::DocumentId;
use tokio::sync::Notify;

use super::lock;
use crate::storage::{Store, StoreError};
use crate::workspace::Workspaces;

/// What the sync path needs to know about automations.
#[derive(Debug, Default)]
pub(crate) struct Triggers {
    /// Workspaces whose automations document holds a rule.
    active: Mutex<BTreeSet<String>>,
    /// Workspaces whose automations document changed (through another
    /// relay of a cluster) and is yet to be looked at: whether they have
    /// rules is not known.
    unsettled: Mutex<BTreeSet<String>>,
    pub(crate) wake: Notify,
    /// Held while the relay changes an automations document (a rule's run
    /// counted by the engine or by a webhook delivery): its changes come
    /// one after another, never two from one state.
    pub(crate) writing: Mutex<()>,
    /// Whether the engine's loop runs ([`EngineRunning`]).
    pub(crate) running: std::sync::atomic::AtomicBool,
    /// When the step under way began (unix ms); 0 between steps.
    pub(crate) step_started: std::sync::atomic::AtomicU64,
}

/// Marks the engine running while it lives, and not once it returns or
/// panics.
#[derive(Debug)]
pub(crate) struct EngineRunning<'a>(&'a Triggers);

impl<'a> EngineRunning<'a> {
    pub(crate) fn new(triggers: &'a Triggers) -> Self {
        triggers
            .running
            .store(true, std::sync::atomic::Ordering::Release);
        Self(triggers)
    }
}

impl Drop for EngineRunning<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Triggers {
    /// Finds the workspaces that have rules. Blocking.
    pub(crate) fn load(store: &Store, workspaces: &Workspaces) -> Result<Self, StoreError> {
        let mut active = BTreeSet::new();
        for id in workspaces.ids() {
            let Some(rules) = workspaces.rules_of(id) else {
                continue;
            };
            let doc = store.load_automerge(rules)?;
            if !document::rules(&doc).is_empty() {
                active.insert(id.to_owned());
            }
        }
        Ok(Self {
            active: Mutex::new(active),
            unsettled: Mutex::default(),
            wake: Notify::new(),
            running: Default::default(),
            step_started: Default::default(),
            writing: Mutex::new(()),
        })
    }

    /// Whether changes to `document` are for the automations to look at:
    /// it belongs to a workspace with rules, or is a workspace's
    /// automations document.
    pub(crate) fn watches(&self, workspaces: &Workspaces, document: DocumentId) -> bool {
        let Some(workspace) = workspaces.home_of(document) else {
            return false;
        };
        document == document::document_id(workspace) || lock(&self.active).contains(workspace)
    }

    /// Whether `workspace` has rules.
    pub(crate) fn is_active(&self, workspace: &str) -> bool {
        lock(&self.active).contains(workspace)
    }

    /// Tells the engine there is something to look at.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Notes that `workspace`'s rules changed and are yet to be looked at.
    pub(crate) fn unsettle(&self, workspace: &str) {
        lock(&self.unsettled).insert(workspace.to_owned());
    }

    /// Whether `workspace`'s rules changed and are yet to be looked at.
    pub(crate) fn is_unsettled(&self, workspace: &str) -> bool {
        lock(&self.unsettled).contains(workspace)
    }

    pub(crate) fn set_active(&self, workspace: &str, active: bool) {
        lock(&self.unsettled).remove(workspace);
        let mut set = lock(&self.active);
        if active {
            set.insert(workspace.to_owned());
        } else {
            set.remove(workspace);
        }
    }
}
