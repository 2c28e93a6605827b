//! What the engine and the webhook deliveries share: the relay's changes
//! to documents on behalf of a rule, and the error of a step.

use automerge::transaction::CommitOptions;
use automerge::{Automerge, AutomergeError};
use rapport_model::ModelError;
use rapport_protocol::ids::UnixMillis;

use crate::storage::StoreError;
use crate::workspace::WorkspaceError;

/// Why a step of the engine (or a delivery) could not finish.
#[derive(Debug, thiserror::Error)]
pub(super) enum EngineError {
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("cannot write the relay's change: {0}")]
    Document(#[from] AutomergeError),
    #[error("cannot write the record: {0}")]
    Model(#[from] ModelError),
}

/// The commit message of the relay's changes on behalf of `rule`.
pub(super) fn message(rule: &str) -> String {
    format!("automation {rule}")
}

/// One change by the relay on behalf of `rule`, timed `at`.
pub(super) fn change(
    doc: &mut Automerge,
    at: UnixMillis,
    rule: &str,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
) -> Result<(), AutomergeError> {
    let options = CommitOptions::default()
        .with_message(message(rule))
        .with_time(i64::try_from(at.as_secs()).unwrap_or(i64::MAX));
    doc.transact_with(|_| options, write)
        .map(drop)
        .map_err(|failure| failure.error)
}

pub(super) fn millis(at: UnixMillis) -> i64 {
    i64::try_from(at.0).unwrap_or(i64::MAX)
}
