//! The one place that decides who may read and write which document.

use rapport_protocol::ids::PublicKey;

/// Who is on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// `--open` mode: nobody is identified.
    Anonymous,
    /// A verified key.
    Key(PublicKey),
}

impl Identity {
    /// The verified key; `None` in `--open` mode.
    pub fn key(self) -> Option<PublicKey> {
        match self {
            Self::Anonymous => None,
            Self::Key(key) => Some(key),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anonymous"),
            Self::Key(key) => key.fmt(f),
        }
    }
}

pub use rapport_model::access::Access;
