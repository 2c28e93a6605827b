//! The replica's errors.

use std::path::PathBuf;

use rapport_protocol::ids::DocumentId;

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The home folder was never set up.
    #[error("{path} holds no rapport identity; run `rapport init --name NAME` first")]
    NotInitialised { path: PathBuf },
    /// The home folder already holds an identity.
    #[error("{path} already holds a rapport identity")]
    AlreadyInitialised { path: PathBuf },
    /// The secret key file can be read by others.
    #[error("{path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFileExposed { path: PathBuf, mode: u32 },
    /// The secret key file is not a key.
    #[error("{path} is not a rapport identity key (expected 32 bytes)")]
    BadKeyFile { path: PathBuf },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The replica database could not be opened or used.
    #[error("the replica database {path} cannot be used: {reason}")]
    Database { path: PathBuf, reason: String },
    /// A document's stored bytes do not load.
    #[error("document {id} in {path} does not load: {reason}")]
    CorruptDocument {
        id: DocumentId,
        path: PathBuf,
        reason: String,
    },
    /// No document with this id is in the replica.
    #[error("no document {id} in this replica")]
    UnknownDocument { id: DocumentId },
    /// A change to a document failed; nothing was written.
    #[error("the change to {id} failed: {source}")]
    Change {
        id: DocumentId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ClientError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
